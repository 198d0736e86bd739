"""The sidecar JSON beside every exported runtime file, and the file-name rule.

`litert/model.tflite` has `litert/model.json`, `onnx/model.dynamic_int8.onnx`
has `onnx/model.dynamic_int8.json`: everything a runner needs that the file
itself does not carry (tokenizer rules and vocabulary, labels, the KV-cache
layout, tensor names). One schema for every task and format:

    format        SIDECAR_FORMAT
    task          "text-classification" | "causal-lm"
    model, file, quantization
    signatures    {signature: {"inputs": [tensor], "outputs": [tensor]}},
                  tensor = {"name", "dtype", "shape"} (null = any size)
    tokenizer     {"type": "word", ...} | {"type": "gpt2_byte_level_bpe", ...}
    labels        text-classification: one class name per output column
    generation    causal-lm: cache_length, prefill_length, cache_layout,
                  start_token_id, end_token_id
"""

import json
import pathlib

SIDECAR_FORMAT = "zoo.sidecar/1"
TASKS = ("text-classification", "causal-lm")
# The unquantized file of every format is the reference variant.
REFERENCE_VARIANT = "float32"


def artifact_filename(variant, suffix):
    """`model.tflite` for the float32 file, `model.<variant>.tflite` for the others."""
    return f"model{suffix}" if variant == REFERENCE_VARIANT else f"model.{variant}{suffix}"


def sidecar_path(model_path):
    return pathlib.Path(model_path).with_suffix(".json")


def read_sidecar(model_path, task=None):
    """The checked sidecar of `model_path` (and that the file exists)."""
    model_path = pathlib.Path(model_path)
    path = sidecar_path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sidecar JSON missing (it is written next to {model_path.name})")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a JSON sidecar ({error})") from None
    if not isinstance(spec, dict) or spec.get("format") != SIDECAR_FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise ValueError(f"{path}: field 'format': expected {SIDECAR_FORMAT!r}, got {found!r}")
    if task is not None and spec.get("task") != task:
        raise ValueError(f"{path}: field 'task': expected {task!r}, got {spec.get('task')!r}")
    return spec


def tensor(name, dtype, shape):
    """A sidecar tensor entry."""
    return {"name": name, "dtype": dtype, "shape": list(shape)}
