"""One inference runtime timed alone in a fresh process: the classifier benchmark's files and peers.

    python -m benchmarks.runtime_process SPEC.json

Two runtimes in one process share its CPU threads (PyTorch ran 10-20% slower taking turns with
TensorFlow in one process here), so `benchmarks.classifier_speed` times each LiteRT file, MediaPipe,
ONNX Runtime and ExecuTorch in a process of its own, started afresh every round; this process never
imports TensorFlow. SPEC is a JSON object:

- `kind`: `litert` (a `.tflite` through `zoo.runtime.TextClassifierRunner`, XNNPACK), `mediapipe`
  (MediaPipe Tasks' TextClassifier on a `.tflite`, raw text in), `onnxruntime` (CPU provider) or
  `executorch` (`.pte` programs, one per static batch size, XNNPACK) or `fasttext` (a fastText
  `.bin`, raw text in);
- `path`: the file, or for `executorch` `{batch size: program}`;
- `token_ids`: a `.npy` of the timed token ids `[largest batch, sequence_length]`, or for `mediapipe`
  and `fasttext` `texts`: a JSON list of the same texts;
- `batch_sizes`, `warmup`, `repeats`, `threads`.

It prints `{"seconds": {batch size: [seconds of each timed call]}}`: the protocol of
`benchmarks.timing.time_calls` (warm-up calls, then timed calls, one batch each).
"""

import json
import pathlib
import sys

import numpy as np

from benchmarks.timing import time_calls


def _litert(spec, token_ids):
    from zoo.runtime import TextClassifierRunner

    runner = TextClassifierRunner(spec["path"], num_threads=spec["threads"])
    return lambda batch: runner.predict_token_ids(token_ids[:batch])


def _mediapipe(spec, texts):
    from zoo.runtime.mediapipe_runner import MediaPipeTextClassifier

    classifier = MediaPipeTextClassifier(spec["path"])
    return lambda batch: classifier.scores(texts[:batch])


def _onnxruntime(spec, token_ids):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = spec["threads"]
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(spec["path"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: token_ids[:batch]})[0]


def _fasttext(spec, texts):
    import fasttext

    from benchmarks.fasttext_peer import normalize

    model = fasttext.load_model(spec["path"])
    return lambda batch: model.predict([normalize(text) for text in texts[:batch]], k=1)


def _executorch(spec, token_ids):
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(spec["threads"])
    runtime = Runtime.get()
    methods = {int(batch): runtime.load_program(path).load_method("forward") for batch, path in spec["path"].items()}
    inputs = {batch: [torch.from_numpy(token_ids[:batch].astype(np.int64))] for batch in methods}
    return lambda batch: methods[batch].execute(inputs[batch])


KINDS = {"litert": _litert, "mediapipe": _mediapipe, "onnxruntime": _onnxruntime, "executorch": _executorch,
         "fasttext": _fasttext}


def run(spec):
    """`{"seconds": {batch: [...]}}` for the runtime `spec` describes."""
    if spec["kind"] in ("mediapipe", "fasttext"):
        inputs = json.loads(pathlib.Path(spec["texts"]).read_text(encoding="utf-8"))
    else:
        inputs = np.load(spec["token_ids"]).astype(np.int32)
    call = KINDS[spec["kind"]](spec, inputs)
    return {"seconds": {str(batch): time_calls(lambda: call(batch), spec["warmup"], spec["repeats"])
                        for batch in spec["batch_sizes"]}}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(pathlib.Path(sys.argv[1]).read_text()))))
