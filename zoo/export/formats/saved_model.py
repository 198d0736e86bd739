"""TF Serving SavedModels: `<root>/<name>/<version>/` itself.

The task supplies the graph (`task.saved_model_graph(job)`: endpoints,
objects to track, warm-up requests); this module writes it with zoo's
`ExportArchive` (weights frozen, each stored once), writes TF Serving's
warm-up file, and reloads it for validation as TF Serving would.
"""

import dataclasses
import pathlib

import tensorflow as tf

from zoo.export.archive import ExportArchive

NAME = "saved_model"
DIRECTORY = ""
TASKS = ("text-classification", "causal-lm")
QUANTIZATIONS = ()
WARMUP_FILENAME = "tf_serving_warmup_requests"
# What a SavedModel consists of inside the version folder.
_CONTENTS = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra")


@dataclasses.dataclass
class SavedModelGraph:
    """What a task hands this format: endpoints `(signature, function, input_signature)`,
    objects to track, TF Serving warm-up requests, custom ops the graph needs."""

    endpoints: list
    tracked: list
    warmup_signature: str = None
    warmup_batches: list = ()
    custom_ops: tuple = ()


def artifact_key(variant):
    return NAME


def write(job, variant):
    graph = job.task.saved_model_graph(job)
    archive = ExportArchive()
    for trackable in graph.tracked:
        archive.track(trackable)
    for signature, function, input_signature in graph.endpoints:
        archive.add_endpoint(signature, function, input_signature=input_signature)
    archive.write_out(str(job.staging), verbose=False)
    if graph.warmup_batches:
        write_warmup_requests(job.staging, job.name, graph.warmup_signature, graph.warmup_batches)
    loaded = tf.saved_model.load(str(job.staging))
    size = sum(path.stat().st_size for name in _CONTENTS for path in _files(job.staging / name))
    artifact = {
        "format": NAME,
        "path": ".",
        "signatures": {signature: signature_spec(loaded.signatures[signature])
                       for signature, _, _ in graph.endpoints},
        "assets": sorted(str(path.relative_to(job.staging)) for name in ("assets", "assets.extra")
                         for path in _files(job.staging / name)),
        "custom_ops": list(graph.custom_ops),
        "bytes": size,
    }
    return job.staging, artifact


def run(job, path, variant):
    """`{runtime: outputs}` from the reloaded SavedModel; the task names the runtimes (its signatures)."""
    return job.task.saved_model_outputs(job, tf.saved_model.load(str(path)))


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
