"""ONNX files for ONNX Runtime: `onnx/model[.dynamic_int8].onnx` + sidecar, token ids in, any batch size.

The task's runtime graph with a dynamic batch dimension, converted by
tf2onnx. Where the architecture's recipe writes its backbone as ONNX nodes
of its own (`Recipe.onnx_backbone`: the recurrent families as ONNX's native
LSTM/GRU/RNN ops, which stop at each text's end) and the task's graph splits
at the backbone's output, tf2onnx converts only what follows the backbone
and the recipe's nodes feed it, computed from the token ids in the graph; a
caller still passes token ids only. `dynamic_int8` is ONNX Runtime's dynamic
quantizer (int8 weights, activations quantized per call), applied to the
float32 file. Validated in a child process on ONNX Runtime's CPU provider
under the same parity rules as the other formats; the sidecar carries the
task's description (tokenizer, labels), so `zoo.runtime` runs the file.
"""

import dataclasses
import logging
import pathlib

import tensorflow as tf

from zoo import extras
from zoo.export import isolation
from zoo.export.architectures import recipe_for
from zoo.export.errors import ConversionError, ExportError
from zoo.export.formats import runtime_files
from zoo.export.graphs import RuntimeTarget
from zoo.runtime import backends, registry
from zoo.runtime.sidecar import artifact_filename, tensor

NAME = "onnx"
DIRECTORY = "onnx"
SUFFIX = ".onnx"
VARIANTS = {"dynamic_int8": "int8 weights, activations quantized per call (ONNX Runtime's dynamic quantizer)"}
EXACT_VARIANTS = ("float32",)
RUNTIMES = backends.RUNTIMES[SUFFIX]
# The converter, the graph edits and ONNX Runtime (signatures, the int8 quantizer, validation): zoo[onnx].
NEEDS = ("tf2onnx", "onnx", "onnxruntime")
# ONNX Runtime 1.2x runs opset 17 everywhere; tf2onnx 1.17 writes it.
OPSET = 17
# Token ids of any length up to the window: ONNX Runtime takes each batch
# padded only to its longest text (`zoo.runtime` does that where the file's
# time dimension is dynamic), and the export validates that path too.
TARGET = RuntimeTarget(batch_size=None, any_length=True)


def serves(task, model):
    return SUFFIX in registry.suffixes(task.name) and (model is None or task.supports_runtime_files(model))


def write(model, path, variant="float32", *, task=None, options=None, validation=None, name=None, version=None,
          scratch=None):
    """Write `model`'s runtime graph (any batch) as ONNX at `path`, with its sidecar beside it.

    `dynamic_int8` is quantized from the float32 file beside `path`
    (`model.onnx`), written first when it is not there.
    """
    from zoo.export.tasks import task_for

    task = task or task_for(model)
    options = options if options is not None else task.options(model)
    if variant != "float32" and variant not in VARIANTS:
        raise ExportError(f"variant: {NAME} has no {variant!r} variant; expected any of {['float32', *VARIANTS]}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant == "float32":
        _write_float32(model, task, options, path)
    else:
        float32 = path.parent / artifact_filename("float32", SUFFIX)
        if not float32.exists():
            _write_float32(model, task, options, float32)
        _quantize(float32, path, variant)
    onnx = extras.require("onnx", "the onnx format")
    graph = onnx.load(str(path))
    signatures = file_signatures(path)
    runtime_files.write_sidecar(path, task, name or model.name, variant, signatures,
                                task.runtime_description(model, options))
    return runtime_files.artifact_entry(
        path, NAME, variant, signatures,
        opset=max(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")),
        ops=sorted({node.op_type for node in graph.graph.node}),
    )


def optional_runtimes(path):
    return {}


def run(path, variant, task, validation, scratch, optional_runtimes=()):
    return isolation.run_in_child(path, task.probe_inputs(validation), RUNTIMES, scratch)


def _write_float32(model, task, options, path):
    backbone = getattr(model, "backbone", None)
    native = None
    if task.splits_at_features and backbone is not None:
        native = recipe_for(backbone).onnx_backbone(backbone, token_ids="token_ids", features="backbone_features",
                                                    window=model.sequence_length)
    if native is None:
        _convert(task.runtime_graph(model, TARGET, options), path)
        return
    _convert(task.runtime_graph(model, dataclasses.replace(TARGET, features_input=True), options), path)
    _join_backbone(path, native)


def _join_backbone(path, fragment):
    """Feed the head graph at `path` (inputs: token ids, features) from `fragment`'s nodes on the token ids."""
    extras.require("onnx", "the onnx format")
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    token_ids, features = (value.name for value in graph.input)  # the runtime graph's signature order
    renames = {"token_ids": token_ids, "backbone_features": features}
    for node in fragment.nodes:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    head_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(fragment.nodes + head_nodes)
    graph.initializer.extend(fragment.initializers)
    kept = [value for value in graph.input if value.name != features]
    del graph.input[:]
    graph.input.extend(kept or [helper.make_tensor_value_info(token_ids, TensorProto.INT32, [None, None])])
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise ConversionError(f"ONNX native backbone: {str(error).splitlines()[0][:300]}") from None
    onnx.save(model, str(path))


def _convert(graph, path):
    tf2onnx = extras.require("tf2onnx", "the onnx format")
    (endpoint,) = graph.endpoints.values()
    try:
        tf2onnx.convert.from_function(
            tf.function(endpoint.function, input_signature=endpoint.input_signature),
            input_signature=endpoint.input_signature, opset=OPSET, output_path=str(path),
        )
    except Exception as error:  # noqa: BLE001 - tf2onnx raises many types
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConversionError(f"ONNX conversion failed: {type(error).__name__}: {message}") from None


def _quantize(float32, path, variant):
    extras.require("onnxruntime", "the onnx format")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # the quantizer logs a warning per tensor it leaves in float
    try:
        quantize_dynamic(str(float32), str(path), weight_type=QuantType.QInt8)
    except Exception as error:  # noqa: BLE001 - any quantizer failure is one line
        raise ConversionError(f"ONNX {variant}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
    finally:
        root_logger.setLevel(level)


def file_signatures(path):
    """The graph's one entry point, named like the other formats' (`serving_default`)."""
    onnxruntime = extras.require("onnxruntime", "the onnx format")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def describe(entries):
        return [tensor(entry.name, _dtype(entry.type), [d if isinstance(d, int) else None for d in entry.shape])
                for entry in entries]

    return {"serving_default": {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}}


def _dtype(onnx_type):
    # "tensor(int32)" -> "int32"; ONNX says "float" for float32.
    name = onnx_type[len("tensor("):-1]
    return {"float": "float32", "double": "float64"}.get(name, name)
