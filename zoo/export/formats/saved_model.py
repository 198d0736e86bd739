"""TF Serving SavedModels: `<root>/<name>/<version>/` itself.

The task supplies its serving graph (raw inputs in: `task.serving_graph`);
this module writes it with zoo's `ExportArchive` (weights frozen, each
stored once), writes TF Serving's warm-up file from the graph's example
inputs, and reloads it for validation as TF Serving would.
"""

import pathlib
import tempfile

import tensorflow as tf

NAME = "saved_model"
DIRECTORY = ""
SUFFIX = ""
VARIANTS = {}
EXACT_VARIANTS = ("float32",)
NEEDS = ()
WARMUP_FILENAME = "tf_serving_warmup_requests"
# What a SavedModel consists of inside the version folder.
_CONTENTS = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra")


def serves(task, model):
    return True


def write(model, path, variant="float32", *, task=None, options=None, validation=None, name=None, version=None,
          scratch=None):
    """Write `model`'s serving graph as a SavedModel into the folder `path`; returns its manifest entry."""
    from zoo.export.tasks import task_for

    task = task or task_for(model)
    path = pathlib.Path(path)
    with tempfile.TemporaryDirectory(prefix="zoo-saved-model-") as own_scratch:
        graph = task.serving_graph(model, validation, pathlib.Path(scratch or own_scratch))
        graph.write_saved_model(path)
    for signature, batches in graph.examples.items():
        write_warmup_requests(path, name or model.name, signature, batches)
    loaded = tf.saved_model.load(str(path))
    return {
        "format": NAME,
        "path": ".",
        "signatures": {signature: signature_spec(loaded.signatures[signature]) for signature in graph.endpoints},
        "assets": sorted(str(file.relative_to(path)) for folder in ("assets", "assets.extra")
                         for file in _files(path / folder)),
        "custom_ops": list(graph.custom_ops),
        "bytes": sum(file.stat().st_size for item in _CONTENTS for file in _files(path / item)),
    }


def optional_runtimes(path):
    return {}


def run(path, variant, task, validation, scratch, optional_runtimes=()):
    """`{runtime: outputs}` from the reloaded SavedModel; the task names the runtimes (its signatures)."""
    return task.serving_outputs(tf.saved_model.load(str(path)).signatures, validation)


def _files(path):
    path = pathlib.Path(path)
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def signature_spec(concrete_function):
    def describe(spec):
        return {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}

    inputs = concrete_function.structured_input_signature[1]
    outputs = concrete_function.structured_outputs
    return {
        "inputs": {key: describe(spec) for key, spec in inputs.items()},
        "outputs": {key: describe(tensor) for key, tensor in outputs.items()},
    }


def write_warmup_requests(directory, model_name, signature_name, batches):
    """`assets.extra/tf_serving_warmup_requests`: one PredictionLog per batch.

    Args:
        batches: list of `{input_name: value}`; TF Serving runs each at load
            time, so give every batch shape clients will send.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    extra = pathlib.Path(directory) / "assets.extra"
    extra.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILENAME)) as writer:
        for inputs in batches:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for input_name, value in inputs.items():
                request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_requests(directory):
    """The warm-up requests as `PredictRequest` protos (for checks and tests)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = pathlib.Path(directory) / "assets.extra" / WARMUP_FILENAME
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
