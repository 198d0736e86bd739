"""ONNX files for ONNX Runtime: `onnx/model[.dynamic_int8].onnx` + sidecar, token ids in, any batch size.

The task's token-id graph with a dynamic batch dimension
(`task.token_ids_endpoint(model, batch_size=None)`), converted by tf2onnx
from a `tf.function`; `dynamic_int8` is ONNX Runtime's dynamic quantizer
(int8 weights, activations quantized per call). Validated in a child
process on ONNX Runtime's CPU provider under the same parity rules as the
other formats; the sidecar carries the tokenizer and labels, so
`zoo.runtime.TextClassifierRunner` (and `zoo predict model.onnx`) run it.
"""

import logging

import tensorflow as tf

from zoo.export import isolation
from zoo.export.errors import ConversionError
from zoo.export.formats import runtime_files
from zoo.runtime import backends
from zoo.runtime.sidecar import artifact_filename, tensor

NAME = "onnx"
DIRECTORY = "onnx"
SUFFIX = ".onnx"
TASKS = ("text-classification",)
QUANTIZATIONS = ("dynamic_int8",)
RUNTIMES = backends.RUNTIMES[SUFFIX]
# ONNX Runtime 1.2x runs opset 17 everywhere; tf2onnx 1.17 writes it.
OPSET = 17


def artifact_key(variant):
    return f"onnx {variant}"


def write(job, variant):
    directory = job.staging / DIRECTORY
    directory.mkdir(exist_ok=True)
    path = directory / artifact_filename(variant, SUFFIX)
    float32 = directory / artifact_filename("float32", SUFFIX)
    if variant == "float32":
        _convert(job, path)
    else:
        # Quantized from the float32 file, which the loop always writes first.
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
    import onnx

    model = onnx.load(str(path))
    artifact = runtime_files.write_sidecar(
        job, NAME, path, variant, file_signatures(path),
        opset=max(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")),
        ops=sorted({node.op_type for node in model.graph.node}),
    )
    return path, artifact


def run(job, path, variant):
    return isolation.run_in_child(path, job.task.runtime_inputs(job), RUNTIMES, job.scratch)


def _convert(job, path):
    try:
        import tf2onnx
    except ImportError:
        raise ConversionError("the onnx format needs tf2onnx and onnxruntime (pip install tf2onnx onnxruntime)")
    function, input_signature = job.task.token_ids_endpoint(job.model, batch_size=None)
    try:
        tf2onnx.convert.from_function(
            tf.function(function, input_signature=input_signature), input_signature=input_signature,
            opset=OPSET, output_path=str(path),
        )
    except Exception as error:  # noqa: BLE001 - tf2onnx raises many types
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConversionError(f"ONNX conversion failed: {type(error).__name__}: {message}") from None


def file_signatures(path):
    """The graph's one entry point, named like the other formats' (`serving_default`)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def describe(entries):
        return [tensor(entry.name, _dtype(entry.type), [d if isinstance(d, int) else None for d in entry.shape])
                for entry in entries]

    return {"serving_default": {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}}


def _dtype(onnx_type):
    # "tensor(int32)" -> "int32"; ONNX says "float" for float32.
    name = onnx_type[len("tensor("):-1]
    return {"float": "float32", "double": "float64"}.get(name, name)
