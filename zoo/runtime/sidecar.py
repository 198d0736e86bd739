"""The sidecar JSON beside every exported runtime file, and the file-name rule.

`litert/model.tflite` has `litert/model.json`, `onnx/model.dynamic_int8.onnx`
has `onnx/model.dynamic_int8.json`: everything a runner needs that the file
itself does not carry (tokenizer rules and vocabulary, labels, the KV-cache
layout, tensor names). One schema for every task and format:

    format        SIDECAR_FORMAT
    task          a task with a registered runner ("text-classification", "causal-lm", ...)
    model, file, quantization
    signatures    {signature: {"inputs": [tensor], "outputs": [tensor]}},
                  tensor = {"name", "dtype", "shape"} (null = any size)
    and the task's own fields (its runner module checks them):
    tokenizer     {"type": "word", ...} | {"type": "gpt2_byte_level_bpe", ...}
    labels        classifiers: one class name per output column
    generation    causal-lm: cache_length, prefill_length, cache_inputs
                  (the cache's input names, per layer), cache_update
                  ("rows" or "replace"), cache_layout (rows), start_token_id,
                  end_token_id

`read_sidecar` checks every field a runner reads (type, range) before
anything opens: a tampered or hand-edited sidecar is a `SidecarError`
naming the file and the field, never an IndexError or a MemoryError deep in
a runner. `zoo.runtime.verify` then checks it against the model file itself.
"""

import json
import pathlib

from zoo.preprocessing.reference import OOV_TOKEN, PAD_TOKEN, PUNCTUATION_MODES
from zoo.runtime import registry

SIDECAR_FORMAT = "zoo.sidecar/1"
# The unquantized file of every format is the reference variant.
REFERENCE_VARIANT = "float32"
# Larger than any real sidecar (GPT-2's is ~2 MB); a bigger file is not read into memory.
MAX_SIDECAR_BYTES = 256 << 20
WORD_SPECIALS = (PAD_TOKEN, OOV_TOKEN)
# Token ids and positions in, probabilities, logits and caches out.
TENSOR_DTYPES = ("int32", "float32")


class SidecarError(ValueError):
    """A sidecar field is missing or not what a runner can use."""


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
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise SidecarError(f"{path}: {path.stat().st_size} bytes; a sidecar is at most {MAX_SIDECAR_BYTES}")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SidecarError(f"{path}: not a JSON sidecar ({error})") from None
    except RecursionError:
        raise SidecarError(f"{path}: not a zoo sidecar (JSON nested too deeply)") from None
    if not isinstance(spec, dict) or spec.get("format") != SIDECAR_FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise SidecarError(f"{path}: field 'format': expected {SIDECAR_FORMAT!r}, got {found!r}")
    if task is not None and spec.get("task") != task:
        raise SidecarError(f"{path}: field 'task': expected {task!r}, got {spec.get('task')!r}")
    check_fields(spec, path)
    return spec


def check_fields(spec, path):
    """Every field a runner reads, typed and in range (SidecarError names the first that is not)."""
    field = Fields(spec, path)
    field.get("task", lambda v: v in registry.tasks(), f"one of {registry.tasks()}")
    for key in ("model", "file", "quantization"):
        field.get(key, is_text, "a non-empty string")
    signatures = field.get("signatures", lambda v: isinstance(v, dict) and v, "a non-empty object")
    for name in signatures:
        for kind in ("inputs", "outputs"):
            tensors = field.get(f"signatures.{name}.{kind}", lambda v: isinstance(v, list) and v, "a non-empty list")
            for index in range(len(tensors)):
                key = f"signatures.{name}.{kind}.{index}"
                field.get(f"{key}.name", is_text, "a non-empty string")
                field.get(f"{key}.dtype", lambda v: v in TENSOR_DTYPES, f"one of {TENSOR_DTYPES}")
                field.get(f"{key}.shape", lambda v: isinstance(v, list) and all(d is None or is_int(d, 1) for d in v),
                          "a list of sizes >= 1 (null: any size)")
            names = [tensor["name"] for tensor in tensors]
            if len(set(names)) != len(names):
                raise SidecarError(f"{path}: field 'signatures.{name}.{kind}': a tensor name repeats: {names}")
    registry.sidecar_check(spec["task"])(field, spec)


def check_word_tokenizer_fields(field, spec):
    """A classifier's `tokenizer` (zoo's word rules and vocabulary) and `labels`."""
    field.get("tokenizer.type", lambda v: v == "word", "'word'")
    field.get("tokenizer.lower", lambda v: isinstance(v, bool), "true or false")
    field.get("tokenizer.punctuation", lambda v: v in PUNCTUATION_MODES, f"one of {PUNCTUATION_MODES}")
    field.get("tokenizer.sequence_length", lambda v: is_int(v, 1), "an integer >= 1")
    vocabulary = field.get("tokenizer.vocabulary", lambda v: isinstance(v, list) and len(v) >= 2 and all(
        is_text(word) for word in v), "a list of >= 2 non-empty strings")
    if tuple(vocabulary[:2]) != WORD_SPECIALS:
        raise field.error("tokenizer.vocabulary", f"{list(WORD_SPECIALS)} first", vocabulary[:2])
    check_unique(field, "tokenizer.vocabulary", vocabulary)
    for key, special_id in (("pad_id", 0), ("oov_id", 1)):
        if key in spec["tokenizer"]:
            field.get(f"tokenizer.{key}", lambda v: v == special_id, f"{special_id} (the rules fix it)")
    labels = field.get("labels", lambda v: isinstance(v, list) and v and all(is_text(label) for label in v),
                       "a non-empty list of class names")
    check_unique(field, "labels", labels)


def check_one_tensor_signature(field, spec):
    """One signature, one input and one output (a classifier's runtime file)."""
    if len(spec["signatures"]) != 1:
        raise field.error("signatures", "one signature", sorted(spec["signatures"]))
    (name, signature), = spec["signatures"].items()
    for kind in ("inputs", "outputs"):
        field.get(f"signatures.{name}.{kind}", lambda v: len(v) == 1, "one tensor")


class Fields:
    """Dotted-path access to a sidecar with one error shape: `<file>: field 'a.b': expected X, got Y`."""

    def __init__(self, spec, path):
        self.spec, self.path = spec, path

    def get(self, dotted, valid, expected):
        node = self.spec
        for key in dotted.split("."):
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise SidecarError(f"{self.path}: field {dotted!r} is missing")
        if not valid(node):
            raise self.error(dotted, expected, node)
        return node

    def error(self, dotted, expected, got):
        shown = repr(got)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return SidecarError(f"{self.path}: field {dotted!r}: expected {expected}, got {shown}")


def is_text(value):
    return isinstance(value, str) and bool(value)


def is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_unique(field, dotted, values):
    seen = set()
    for value in values:
        if value in seen:
            raise SidecarError(f"{field.path}: field {dotted!r}: expected no repeated entries, got {value!r} twice")
        seen.add(value)


def tensor(name, dtype, shape):
    """A sidecar tensor entry."""
    return {"name": name, "dtype": dtype, "shape": list(shape)}
