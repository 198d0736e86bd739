"""LiteRT (TFLite) files that run on builtin ops only: `litert/model[.<variant>].tflite` + sidecar.

Keras's `model.export(format="litert")` always enables SELECT_TF_OPS, so RNNs
(TensorList ops) and models with a tokenizer attached (HashTable ops) convert
but fail in the stock LiteRT runtime. zoo converts the task's token-id graph
(`task.litert_conversion_model`: static shapes, written by zoo's
`ExportArchive`, which freezes the variables) with TFLITE_BUILTINS as the
only op set: a model that needs anything else fails here, naming each op and
the layer it came from, instead of producing a file that cannot run.

Each file is validated in a child process on both runtimes an app meets:
the builtin kernels with no delegate, and LiteRT's default XNNPACK set-up.
"""

import re

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from zoo.export import isolation
from zoo.export.errors import ConversionError
from zoo.export.formats import runtime_files
from zoo.runtime import backends
from zoo.runtime.sidecar import artifact_filename, tensor

NAME = "tflite"
DIRECTORY = "litert"
SUFFIX = ".tflite"
TASKS = ("text-classification", "causal-lm")
QUANTIZATIONS = ("float16", "dynamic_int8", "int8", "batch32")
# Variants that are float32 weights with a static batch other than 1 (the input's first dimension).
BATCH_SIZES = {"batch32": 32}
RUNTIMES = backends.RUNTIMES[SUFFIX]

_BUILTIN_NAMES = {
    code: name for name, code in vars(tflite_schema.BuiltinOperator).items() if not name.startswith("_")
}


def artifact_key(variant):
    return f"litert {variant}"


def write(job, variant):
    task = job.task
    conversion_model = task.litert_conversion_model(job, variant)
    flatbuffer = convert(
        conversion_model, None if variant == "float32" or variant in BATCH_SIZES else variant,
        calibration_inputs=task.litert_calibration_inputs(job) if variant == "int8" else None,
        signature_keys=task.LITERT_SIGNATURES, float_ops=task.litert_int8_float_ops(job.model),
        converter_options=task.litert_converter_options(job, variant),
    )
    # The task may embed what other runtimes need inside the file (TFLite
    # model metadata for MediaPipe's TextClassifier); ops stay the same.
    flatbuffer = task.litert_file_metadata(job, variant, flatbuffer)
    directory = job.staging / DIRECTORY
    directory.mkdir(exist_ok=True)
    path = directory / artifact_filename(variant, SUFFIX)
    path.write_bytes(flatbuffer)
    artifact = runtime_files.write_sidecar(job, NAME, path, variant, file_signatures(flatbuffer),
                                           ops=op_names(flatbuffer), **task.litert_artifact_fields(job, flatbuffer))
    return path, artifact


def run(job, path, variant):
    """The builtin kernels, XNNPACK, and the app runtimes the task adds (MediaPipe for classifiers),
    which take one input at a time: not on a batch variant."""
    app_runtimes = () if variant in BATCH_SIZES else tuple(job.task.APP_RUNTIMES.get(NAME, ()))
    runtimes = RUNTIMES + app_runtimes
    return isolation.run_in_child(path, job.task.runtime_inputs(job), runtimes, job.scratch)


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
            float_ops=(), converter_options=None):
    """Convert to a builtins-only flatbuffer; return its bytes.

    Args:
        saved_model_dir: the task's conversion SavedModel (static shapes).
        quantization: None (float32), "float16" (float16 weights),
            "dynamic_int8" (int8 weights, float activations) or "int8"
            (int8 weights and activations calibrated on
            `calibration_inputs`; ops without an int8 kernel stay float).
        calibration_inputs: list of `{input name: array}`, real training
            examples, required for "int8".
        float_ops: "int8" only: TFLite op names (e.g. "BATCH_MATMUL") left
            in float32 (the task's per-architecture choice).
        converter_options: `TFLiteConverter` attributes to set (a task's
            per-architecture recipe).
    """
    if quantization not in (None,) + QUANTIZATIONS:
        raise ConversionError(f"quantization must be one of {QUANTIZATIONS} or None, got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    for option, value in (converter_options or {}).items():
        setattr(converter, option, value)
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
