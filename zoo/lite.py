"""Run zoo's LiteRT files with the stock `ai_edge_litert` interpreter.

Everything a runner needs sits in the sidecar JSON next to the `.tflite`
file (`model.tflite` -> `model.json`): vocabulary and tokenizer rules,
labels or the KV-cache layout, tensor names. Tokenization is pure Python
(`zoo.preprocessing.reference`, `zoo.preprocessing.bpe_reference`), the same
code a phone app ports, so no TensorFlow is needed here.

Example:
>>> runner = TextClassifierRunner("saved_models/lstm_classifier/1/litert/model.tflite")
>>> runner.predict_labels(["a gorgeous, witty, seductive movie."])
[('pos', 0.91)]
>>> Generator("saved_models/gpt2_tiny/1/litert/model.tflite").generate("ROMEO:", max_length=32)
'ROMEO: ...'
"""

import json
import pathlib

import numpy as np

from zoo.preprocessing.bpe_reference import ReferenceBytePairTokenizer
from zoo.preprocessing.reference import ReferenceWordTokenizer

SIDECAR_FORMAT = "zoo.text_classifier.litert/1"
# /2: prefill (in chunks) and decode return only the new cache rows
# (`cache_update`); the cache is [1, layers, 2, heads, cache_length, head_dim].
CAUSAL_LM_SIDECAR_FORMAT = "zoo.causal_lm.litert/2"
SAMPLERS = ("greedy", "top_k", "top_p")


def sidecar_path(model_path):
    return pathlib.Path(model_path).with_suffix(".json")


def _open(model_path, expected_format, num_threads, delegates):
    """`(spec, interpreter)` for a zoo LiteRT file and its sidecar, checked."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model_path = pathlib.Path(model_path)
    sidecar = sidecar_path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such LiteRT file")
    if not sidecar.is_file():
        raise FileNotFoundError(f"{sidecar}: sidecar JSON missing (it is written next to the .tflite file)")
    spec = json.loads(sidecar.read_text(encoding="utf-8"))
    if spec.get("format") != expected_format:
        raise ValueError(f"{sidecar}: field 'format': expected {expected_format!r}, got {spec.get('format')!r}")
    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_path=str(model_path), num_threads=num_threads, experimental_op_resolver_type=resolver
    )
    return spec, interpreter


class TextClassifierRunner:
    """Raw strings in, class probabilities out, through a LiteRT file.

    Args:
        model_path: the `.tflite` file; its sidecar is `<same name>.json`.
        num_threads: interpreter threads.
        delegates: False runs the plain builtin kernels with no delegate at
            all (what zoo's export validation uses); True lets LiteRT apply
            its default XNNPACK delegate, as an app would.
    """

    def __init__(self, model_path, num_threads=2, delegates=True):
        self.model_path = pathlib.Path(model_path)
        self.spec, self.interpreter = _open(self.model_path, SIDECAR_FORMAT, num_threads, delegates)
        self.tokenizer = ReferenceWordTokenizer.from_json(sidecar_path(self.model_path))
        self.class_names = list(self.spec["labels"])
        self._signature = self.interpreter.get_signature_runner(self.spec["signature"])
        self._input_name = self.spec["input"]["name"]
        self._output_name = self.spec["output"]["name"]

    def predict_token_ids(self, token_ids):
        """Probabilities `[n, num_classes]` for int32 ids `[n, sequence_length]`."""
        # Imported here: zoo.export imports this module (sidecar names).
        from zoo.export.litert_probe import run_in_batches

        probabilities = run_in_batches(self._signature, token_ids, self._input_name, self._output_name)
        if probabilities is None:
            return np.zeros((0, len(self.class_names)), np.float32)
        return probabilities

    def predict(self, texts):
        """Probabilities `[len(texts), num_classes]` for raw strings."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of strings, not one string")
        return self.predict_token_ids(self.tokenizer.encode(list(texts)))

    def predict_labels(self, texts):
        """`(class_name, probability)` for each text."""
        probabilities = self.predict(texts)
        best = probabilities.argmax(axis=-1)
        return [(self.class_names[i], float(row[i])) for i, row in zip(best, probabilities)]


class Generator:
    """Text generation with a LiteRT GPT-2 decoder (`prefill` + `decode`, KV cache).

    Tokenization (byte-level BPE from the sidecar), the sampling loop and
    detokenization run here in Python/numpy; the `.tflite` file runs the
    network. Greedy output is token-for-token Keras `generate`'s (zoo's
    export checks it for the float32 file).

    Args:
        model_path: the `.tflite` file; its sidecar is `<same name>.json`.
        num_threads: interpreter threads.
        delegates: as for `TextClassifierRunner`.

    Example:
    >>> generator = Generator("saved_models/gpt2_tiny/1/litert/model.tflite")
    >>> generator.generate(["ROMEO:", "JULIET:"], max_length=32, sampler="top_k", seed=0)
    """

    def __init__(self, model_path, num_threads=2, delegates=True):
        self.model_path = pathlib.Path(model_path)
        self.spec, self.interpreter = _open(self.model_path, CAUSAL_LM_SIDECAR_FORMAT, num_threads, delegates)
        tokenizer = self.spec["tokenizer"]
        self.tokenizer = ReferenceBytePairTokenizer(tokenizer["vocabulary"], tokenizer["merges"])
        self.end_token_id = int(tokenizer["end_token_id"])
        self.cache_length = int(self.spec["cache_length"])
        self.prefill_length = int(self.spec["prefill_length"])
        self._cache_spec = next(entry for entry in self.spec["inputs"]["decode"] if entry["name"] == "cache")
        self._prefill = self.interpreter.get_signature_runner(self.spec["signatures"]["prefill"])
        self._decode = self.interpreter.get_signature_runner(self.spec["signatures"]["decode"])

    def prompt_token_ids(self, prompt):
        """Start token (`<|endoftext|>`) + the prompt's ids, as Keras `generate` feeds them."""
        return [self.end_token_id] + self.tokenizer.encode(prompt)

    def prefill(self, prompt_ids):
        """Run the prompt (at most `cache_length` ids) through `prefill`, chunk by chunk.

        Returns `{"logits": [1, V] after the last id, "cache": the filled cache}`.
        """
        cache = np.zeros(self._cache_spec["shape"], np.float32)
        chunk = self.prefill_length
        for start in range(0, len(prompt_ids), chunk):
            piece = prompt_ids[start : start + chunk]
            token_ids = np.zeros((1, chunk), np.int32)
            token_ids[0, : len(piece)] = piece
            outputs = self._prefill(token_ids=token_ids, cache=cache, position=np.int32(start),
                                    length=np.int32(len(piece)))
            # Rows past the prompt get the padding's keys; decode overwrites
            # each before any later token reads it.
            cache[:, :, :, :, start : start + chunk] = outputs["cache_update"]
        return {"logits": outputs["logits"], "cache": cache}

    def generate_token_ids(self, prompt_ids, max_length=64, sampler="greedy", temperature=1.0, top_k=10,
                           top_p=0.9, seed=None):
        """New token ids after `prompt_ids` (`<|endoftext|>` included if reached).

        Args:
            max_length: total tokens, prompt included; at most the file's
                `cache_length`.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        max_length = min(int(max_length), self.cache_length)
        prompt_ids = list(prompt_ids)[:max_length]
        if not prompt_ids:
            raise ValueError("prompt_ids is empty: it needs at least the start token")
        rng = np.random.default_rng(seed)
        outputs = self.prefill(prompt_ids)
        cache = outputs["cache"]
        length, new_ids = len(prompt_ids), []
        while length < max_length:
            token = _sample(outputs["logits"][0], sampler, temperature, top_k, top_p, rng)
            new_ids.append(token)
            length += 1
            if token == self.end_token_id or length == max_length:
                break
            position = length - 1
            outputs = self._decode(token_id=np.array([[token]], np.int32), cache=cache, position=np.int32(position))
            # decode hands back only this token's keys/values (no cache copy in the graph).
            cache[:, :, :, :, position] = outputs["cache_update"][:, :, :, :, 0]
        return new_ids

    def generate(self, prompts, max_length=64, sampler="greedy", strip_prompt=False, **sampler_args):
        """Continue a prompt (or a list of them); returns text like Keras `generate`."""
        single = isinstance(prompts, str)
        outputs = []
        for prompt in [prompts] if single else list(prompts):
            prompt_ids = self.prompt_token_ids(prompt)
            new_ids = [token for token in self.generate_token_ids(prompt_ids, max_length, sampler, **sampler_args)
                       if token != self.end_token_id]
            kept = new_ids if strip_prompt else [t for t in prompt_ids if t != self.end_token_id] + new_ids
            outputs.append(self.tokenizer.decode(kept))
        return outputs[0] if single else outputs


def _sample(logits, sampler, temperature, top_k, top_p, rng):
    if sampler == "greedy":
        return int(np.argmax(logits))
    logits = np.asarray(logits, np.float64) / max(float(temperature), 1e-6)
    if sampler == "top_k":
        candidates = np.argpartition(-logits, min(top_k, len(logits)) - 1)[:top_k]
    else:
        order = np.argsort(-logits)
        probabilities = np.exp(logits[order] - logits[order[0]])
        probabilities /= probabilities.sum()
        # The smallest set whose probability reaches top_p (at least one token).
        candidates = order[: int(np.searchsorted(np.cumsum(probabilities), top_p)) + 1]
    weights = np.exp(logits[candidates] - logits[candidates].max())
    return int(rng.choice(candidates, p=weights / weights.sum()))
