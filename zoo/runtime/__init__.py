"""`zoo.runtime`: run zoo's exported files without TensorFlow or Keras.

Imports NumPy, `regex` and `ai_edge_litert` (and `onnxruntime` only to open
an `.onnx` file; `mediapipe` for `mediapipe_runner`, `litert_lm` for
`.litertlm` bundles in `litertlm_runner`): what a Raspberry Pi or an app's Python backend installs
(`pip install ./runtime`, the `zoo-runtime` distribution; README "Runtime
only"). Every file comes with a sidecar JSON (`zoo.runtime.sidecar`) holding
its tokenizer, labels or KV-cache layout, so a raw string goes in and a label
or text comes out.

Example:
>>> from zoo.runtime import TextClassifierRunner, Generator
>>> TextClassifierRunner("saved_models/lstm_classifier/1/litert/model.tflite").predict_labels(["a fine film"])
[('pos', 0.91)]
>>> Generator("saved_models/gpt2_tiny/1/litert/model.tflite").generate("ROMEO:", max_length=32)
'ROMEO: ...'
"""

from zoo.runtime.generator import SAMPLERS, Generator
from zoo.runtime.sidecar import SIDECAR_FORMAT, artifact_filename, read_sidecar, sidecar_path
from zoo.runtime.text_classifier import TextClassifierRunner

_RUNNERS = {"text-classification": TextClassifierRunner, "causal-lm": Generator}


def load(model_path, **options):
    """The runner for an exported file: by its sidecar's task, or a LiteRT-LM bundle's engine."""
    import pathlib

    if pathlib.Path(model_path).suffix == ".litertlm":
        from zoo.runtime.litertlm_runner import LiteRTLMGenerator

        return LiteRTLMGenerator(model_path, **options)
    return _RUNNERS[read_sidecar(model_path)["task"]](model_path, **options)
