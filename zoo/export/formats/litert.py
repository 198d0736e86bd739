"""LiteRT (TFLite) files that run on builtin ops only: `litert/model[.<variant>].tflite` + sidecar.

Keras's `model.export(format="litert")` always enables SELECT_TF_OPS, so RNNs
(TensorList ops) and models with a tokenizer attached (HashTable ops) convert
but fail in the stock LiteRT runtime. zoo converts the task's runtime graph
(static shapes, written by zoo's `ExportArchive`, which freezes the
variables) with TFLITE_BUILTINS as the only op set: a model that needs
anything else fails here, naming each op and the layer it came from, instead
of producing a file that cannot run.

The variants, and what this format asks of the task's graph for each:
- float32 and float16: batch 1 (the phone file), loops unrolled over the
  window as the architecture's recipe writes them (`zoo.export.architectures`).
- dynamic_int8 (int8 weights, float activations) and int8 (weights and
  activations calibrated on the task's representative inputs; the
  architecture's `int8_float_ops` stay float32): batch 1, unrolled.
- batch32: float32 weights with a static batch of 32, for servers (a batch-1
  file takes 32 texts as 32 invokes), unrolled.

A batch-1 file of a task that describes labels and a word tokenizer (a text
classifier) carries TFLite model metadata (`zoo.export.tflite_metadata`), so
MediaPipe Tasks' TextClassifier loads it with no sidecar.

Each file is validated in a child process on the runtimes an app meets: the
builtin kernels with no delegate, LiteRT's default XNNPACK set-up, and
MediaPipe's TextClassifier for a file with its metadata.
"""

import pathlib
import re
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from zoo.export import isolation
from zoo.export.errors import ConversionError, ExportError
from zoo.export.formats import runtime_files
from zoo.export.graphs import RuntimeTarget
from zoo.preprocessing import reference
from zoo.runtime import backends, registry
from zoo.runtime.sidecar import read_sidecar, tensor

NAME = "litert"
DIRECTORY = "litert"
SUFFIX = ".tflite"
VARIANTS = {
    "float16": "float16 weights",
    "dynamic_int8": "int8 weights, float activations",
    "int8": "int8 weights and activations, calibrated on training texts",
    "batch32": "float32 weights, a static batch of 32 (for servers)",
}
EXACT_VARIANTS = ("float32", "batch32")
RUNTIMES = backends.RUNTIMES[SUFFIX]
NEEDS = ()
# Converter settings per variant: what `convert` quantizes.
_QUANTIZATION = {"float32": None, "batch32": None, "float16": "float16", "dynamic_int8": "dynamic_int8",
                 "int8": "int8"}

_BUILTIN_NAMES = {
    code: name for name, code in vars(tflite_schema.BuiltinOperator).items() if not name.startswith("_")
}


def serves(task, model):
    return SUFFIX in registry.suffixes(task.name) and (model is None or task.supports_runtime_files(model))


def target(variant):
    """What a file of `variant` asks of the task's graph (the module docstring says why)."""
    if variant == "batch32":
        return RuntimeTarget(batch_size=32, unroll=True)
    return RuntimeTarget(batch_size=1, unroll=True)


def write(model, path, variant="float32", *, task=None, options=None, validation=None, name=None, version=None,
          scratch=None):
    """Convert `model`'s runtime graph for `variant` to `path` (a `.tflite`) with its sidecar beside it.

    `validation` (the task's validation set) is needed for "int8" only: its
    calibration inputs. `scratch` keeps conversion SavedModels for other
    variants of the same model; by default a temporary folder.
    """
    from zoo.export.architectures import recipe_for
    from zoo.export.tasks import task_for

    task = task or task_for(model)
    options = options if options is not None else task.options(model)
    if variant != "float32" and variant not in VARIANTS:
        raise ExportError(f"variant: {NAME} has no {variant!r} variant; expected any of {['float32', *VARIANTS]}")
    path, name = pathlib.Path(path), name or model.name
    description = task.runtime_description(model, options)
    with tempfile.TemporaryDirectory(prefix="zoo-litert-") as own_scratch:
        scratch = pathlib.Path(scratch or own_scratch)
        file_target = target(variant)
        graph = task.runtime_graph(model, file_target, options)
        conversion = scratch / f"litert_b{file_target.batch_size}"
        if not conversion.exists():
            graph.write_saved_model(conversion)
        flatbuffer = convert(
            conversion, _QUANTIZATION[variant],
            calibration_inputs=task.calibration_inputs(model, validation) if variant == "int8" else None,
            signature_keys=tuple(graph.endpoints), float_ops=recipe_for(model.backbone).int8_float_ops,
        )
    fields = {}
    if _has_text_classifier_metadata(description, file_target):
        flatbuffer, fields = _with_text_classifier_metadata(flatbuffer, description, name, version, variant, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    signatures = file_signatures(flatbuffer)
    runtime_files.write_sidecar(path, task, name, variant, signatures, description)
    return runtime_files.artifact_entry(path, NAME, variant, signatures, ops=op_names(flatbuffer), **fields)


def optional_runtimes(path):
    """MediaPipe's TextClassifier, for a file carrying its metadata (zoo[mediapipe])."""
    from zoo.export import tflite_metadata

    has_metadata = tflite_metadata.metadata_buffer(pathlib.Path(path).read_bytes()) is not None
    return {"mediapipe": "mediapipe"} if has_metadata else {}


def run(path, variant, task, validation, scratch, optional_runtimes=()):
    """The builtin kernels and XNNPACK; MediaPipe's TextClassifier too where asked (`optional_runtimes`)."""
    mediapipe = "mediapipe" in optional_runtimes
    outputs = isolation.run_in_child(path, task.probe_inputs(validation),
                                     RUNTIMES + (("mediapipe",) if mediapipe else ()), scratch)
    if mediapipe:
        # MediaPipe tokenizes the raw text itself: the task holds it to zoo's runner on the same
        # (XNNPACK) kernels, strictly where its regex tokenizer gives zoo's ids.
        tokenizer = read_sidecar(path)["tokenizer"]
        outputs["mediapipe"].update(ids_exact=reference.mediapipe_exact(tokenizer["lower"], tokenizer["punctuation"]),
                                    same_kernels_as="xnnpack")
    return outputs


def _has_text_classifier_metadata(description, file_target):
    """A batch-1 file whose task describes labels and zoo's word tokenizer: MediaPipe's TextClassifier
    can run it (it takes one `[1, L]` input)."""
    return (file_target.batch_size == 1 and "labels" in description
            and description.get("tokenizer", {}).get("type") == "word")


def _with_text_classifier_metadata(flatbuffer, description, name, version, variant, model):
    """The file with TFLite model metadata for MediaPipe Tasks' TextClassifier, and its manifest fields."""
    from zoo.export import tflite_metadata

    tokenizer = description["tokenizer"]
    exact = reference.mediapipe_exact(tokenizer["lower"], tokenizer["punctuation"])
    pattern = reference.mediapipe_delimiter_pattern(tokenizer["punctuation"])
    flatbuffer = tflite_metadata.add_text_classifier_metadata(
        flatbuffer,
        name=name,
        version=str(version or ""),
        description=(f"zoo model {name} ({type(model.backbone).__name__}, {variant}); MediaPipe's regex tokenizer "
                     f"reproduces zoo's token ids "
                     f"{'exactly' if exact else 'not exactly (lower=False with punctuation delimit or keep would)'}"),
        vocabulary=tokenizer["vocabulary"],
        labels=description["labels"],
        delimiter_pattern=pattern,
    )
    return flatbuffer, {"metadata": tflite_metadata.read_metadata(flatbuffer),
                        "mediapipe": {"ids_exact": exact, "delimiter_pattern": pattern}}


def file_signatures(flatbuffer):
    """`{signature: {"inputs": [tensor], "outputs": [tensor]}}` as the file declares them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    signatures = {}
    for key, names in interpreter.get_signature_list().items():
        runner = interpreter.get_signature_runner(key)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        signatures[key] = {
            "inputs": [tensor(name, inputs[name]["dtype"].__name__, inputs[name]["shape"].tolist())
                       for name in names["inputs"]],
            "outputs": [tensor(name, outputs[name]["dtype"].__name__, outputs[name]["shape"].tolist())
                        for name in names["outputs"]],
        }
    return signatures


def convert(saved_model_dir, quantization=None, calibration_inputs=None, signature_keys=("serving_default",),
            float_ops=()):
    """Convert to a builtins-only flatbuffer; return its bytes.

    Args:
        saved_model_dir: a SavedModel of static-shape signatures.
        quantization: None (float32), "float16" (float16 weights),
            "dynamic_int8" (int8 weights, float activations) or "int8"
            (int8 weights and activations calibrated on
            `calibration_inputs`; ops without an int8 kernel stay float).
        calibration_inputs: list of `{input name: array}`, real training
            examples, required for "int8".
        float_ops: "int8" only: TFLite op names (e.g. "BATCH_MATMUL") left
            in float32 (the architecture recipe's `int8_float_ops`).
    """
    if quantization not in (None, "float16", "dynamic_int8", "int8"):
        raise ConversionError(f"quantization must be float16, dynamic_int8, int8 or None, got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if not calibration_inputs:
            raise ConversionError("int8 quantization needs calibration examples (training texts)")

        def representative_dataset():
            yield from calibration_inputs

        converter.representative_dataset = representative_dataset
    try:
        if quantization == "int8" and float_ops:
            # The documented way to leave ops out of full-integer
            # quantization: calibrate once, then quantize all but those.
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
        else:
            flatbuffer = converter.convert()
    except Exception as error:  # ConverterError, but also MLIR pass failures
        raise ConversionError(describe_conversion_error(str(error), quantization)) from None
    non_builtin = [op for op in op_names(flatbuffer) if not op.isupper()]
    if non_builtin:
        raise ConversionError(f"LiteRT file would need non-builtin ops {non_builtin}; refusing to write it")
    return flatbuffer


def describe_conversion_error(message, quantization=None):
    """One line naming every op LiteRT lacks and the layer each came from."""
    # MLIR diagnostics look like:
    #   loc(callsite(fused["TensorListReserve:", "lstm_classifier/lstm/TensorListReserve@..."]
    #   ...)): 'tf.TensorListReserve' op is neither a custom op nor a flex op
    found = {}
    for line in message.splitlines():
        op = re.search(r"'(tf\.\w+)' op is neither a custom op nor a flex op", line)
        if not op:
            continue
        location = re.search(r'fused\["[^"]*", "([^"@]+)', line)
        layer = _layer_of(location.group(1)) if location else "unknown layer"
        found.setdefault(op.group(1), set()).add(layer)
    if not found:
        first = next((line for line in message.splitlines() if "error" in line.lower()), message[:300])
        return f"LiteRT conversion ({quantization or 'float32'}) failed: {first.strip()}"
    ops = "; ".join(f"{op} (from {', '.join(sorted(layers))})" for op, layers in sorted(found.items()))
    return (
        f"LiteRT conversion ({quantization or 'float32'}) needs ops outside TFLite's builtin set: {ops}. "
        "Rewrite those layers with builtin-convertible ops; zoo does not ship Flex (SELECT_TF_OPS) files"
    )


def _layer_of(node_name):
    # "lstm_classifier_token_ids_1/recurrent_backbone_1/lstm_1/while/..." -> the
    # layer path without the op and Keras's "_1" uniquifying suffixes.
    parts = [part for part in node_name.split("/")[:-1] if part not in ("while", "body", "cond")]
    return "/".join(parts) or node_name


def _operator_code_names(model):
    """The name of each operator code of `model`, by code index ("CustomName" for custom ops)."""
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names.append(code.CustomCode().decode("utf-8") if builtin == tflite_schema.BuiltinOperator.CUSTOM
                     else _BUILTIN_NAMES[builtin])
    return names


def op_names(flatbuffer):
    """Sorted names of every operator in every subgraph ("CustomName" for custom ops)."""
    return sorted(set(_operator_code_names(tflite_schema.Model.GetRootAs(flatbuffer, 0))))


def signature_op_names(flatbuffer):
    """`{signature key: sorted operator names of its subgraph}` (builtin names, or the custom name)."""
    model = tflite_schema.Model.GetRootAs(flatbuffer, 0)
    codes = _operator_code_names(model)
    result = {}
    for index in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(index)
        subgraph = model.Subgraphs(signature.SubgraphIndex())
        result[signature.SignatureKey().decode("utf-8")] = sorted(
            {codes[subgraph.Operators(op).OpcodeIndex()] for op in range(subgraph.OperatorsLength())}
        )
    return result
