"""`zoo.runtime`: run zoo's exported files without TensorFlow or Keras.

Imports NumPy, `regex` and `ai_edge_litert` (and `onnxruntime` only to open
an `.onnx` file; `mediapipe` for `mediapipe_runner`, `litert_lm` for
`.litertlm` bundles in `litertlm_runner`: each an extra, named by `zoo.extras`
when missing): what a Raspberry Pi or an app's Python backend installs
(`pip install ./runtime`, the `zoo-runtime` distribution; README "Runtime
only"). Every file comes with a sidecar JSON (`zoo.runtime.sidecar`) holding
its tokenizer, labels or cache layout, so a raw string goes in and a label
or text comes out. Which runner runs a file is registered by task and suffix
(`zoo.runtime.registry`). Every runner is safe to share between threads
(each says how in its docstring; docs/runtime.md "Threads").

Example:
>>> from zoo.runtime import TextClassifierRunner, Generator
>>> TextClassifierRunner("saved_models/lstm_classifier/1/litert/model.tflite").predict_labels(["a fine film"])
[('pos', 0.91)]
>>> Generator("saved_models/gpt2_tiny/1/litert/model.tflite").generate("ROMEO:", max_length=32)
'ROMEO: ...'
"""

import pathlib

from zoo.runtime import litertlm_runner  # noqa: F401  (registers the .litertlm runner)
from zoo.runtime import registry
from zoo.runtime.generator import SAMPLERS, Generator
from zoo.runtime.multi_label_classifier import MultiLabelClassifierRunner
from zoo.runtime.sidecar import SIDECAR_FORMAT, artifact_filename, read_sidecar, sidecar_path
from zoo.runtime.text_classifier import TextClassifierRunner


def load(model_path, **options):
    """The runner for an exported file: by its sidecar's task (or, for a bundle, its suffix) and its suffix."""
    suffix = pathlib.Path(model_path).suffix
    task = registry.self_contained_task(suffix) or read_sidecar(model_path)["task"]
    return registry.runner_class(task, suffix)(model_path, **options)
