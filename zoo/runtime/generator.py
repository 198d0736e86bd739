"""`Generator`: text generation with an exported LiteRT decoder (prefill + decode against a cache).

The file's sidecar says how a step updates the cache (`generation.cache_update`):
"rows" (a transformer's KV cache: each step returns `cache_update`, its new
keys and values, written here at rows `position...`) or "replace" (a
recurrent network's state: each step returns every cache tensor anew, under
its input's name).
"""

import collections.abc
import numbers
import pathlib

import numpy as np

from zoo.preprocessing.bpe_reference import ReferenceBytePairTokenizer
from zoo.runtime import backends, registry
from zoo.runtime import verify as verification
from zoo.runtime.sidecar import SidecarError, check_unique, is_int, is_text, read_sidecar, sidecar_path

TASK = "causal-lm"
# What the LiteRT loop samples with; Keras `generate` (zoo.causal_lm) adds beam search.
SAMPLERS = ("greedy", "top_k", "top_p")
KERAS_SAMPLERS = SAMPLERS + ("beam",)


SEED_LIMIT = 2**32  # what every path takes: NumPy's and Keras's seeds, the LiteRT-LM engine's 32-bit one


def check_generation_arguments(sampler="greedy", max_length=64, temperature=1.0, top_k=10, top_p=0.9, num_beams=4,
                               seed=None, samplers=SAMPLERS, vocabulary_size=None, context_length=None):
    """The one set of rules for generation arguments: Keras `generate`, the LiteRT `Generator`, the LiteRT-LM
    runner and `zoo generate` all call it, so a value is refused (or taken) alike on every path.

    A temperature of 0 would divide the logits by zero (NaN text), top_p
    above 1 and top_k below 1 select nothing sensible, a seed outside
    [0, 2**32) means something else to each random generator, and a
    `max_length` past the model's context (`context_length`: the position
    embedding, the exported cache) cannot be generated: refuse them before any work.
    """
    import math

    if sampler not in samplers:
        raise ValueError(f"sampler must be one of {samplers}, got {sampler!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2 (it counts the prompt and the start token), "
                         f"got {max_length!r}")
    if context_length is not None and max_length > context_length:
        raise ValueError(f"max_length {max_length} is past the model's context of {context_length} tokens "
                         f"(prompt and start token included): ask for at most {context_length}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    if vocabulary_size is not None and top_k > vocabulary_size:
        raise ValueError(f"top_k must be at most the vocabulary size ({vocabulary_size}), got {top_k}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1, got {num_beams!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed < SEED_LIMIT):
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def check_prompt_lengths(prompt_lengths, max_length):
    """Each prompt (start token included) must leave room for a new token within `max_length`.

    Keras would otherwise cut the prompt silently and LiteRT refuse it:
    every path refuses it, with this message.
    """
    for index, length in enumerate(prompt_lengths):
        if length >= max_length:
            raise ValueError(f"prompt {index} has {length} tokens (start token included); max_length {max_length} "
                             f"counts the prompt and leaves no room for new tokens: raise max_length (up to the "
                             f"model's context) or shorten the prompt")


def prompt_list(prompts):
    """`(texts, single)`: one prompt or a list of them as a list of `str`, and whether one was given.

    A prompt is text: `str`, or `bytes` holding UTF-8. Bytes that are not
    UTF-8, and the lone surrogates a command line's undecodable bytes
    become in Python (U+DC80..U+DCFF), are refused with one message on every
    path; no path guesses another encoding or drops them.
    """
    single = isinstance(prompts, (str, bytes))
    if not single and not isinstance(prompts, collections.abc.Iterable):
        raise TypeError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}")
    prompts = [prompts] if single else list(prompts)
    if not prompts:
        raise ValueError("prompts is empty: pass a string or a list of strings")
    return [_prompt_text(index, prompt) for index, prompt in enumerate(prompts)], single


def _prompt_text(index, prompt):
    if isinstance(prompt, bytes):
        try:
            return prompt.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"prompt {index} is not UTF-8 text: byte 0x{prompt[error.start]:02x} at position "
                             f"{error.start}") from None
    if not isinstance(prompt, str):
        raise TypeError(f"prompt {index} must be a string, got {type(prompt).__name__}")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(prompt[error.start])
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"lone surrogate U+{code:04X}"
        raise ValueError(f"prompt {index} is not UTF-8 text: {what} at position {error.start}") from None
    return prompt


@registry.register_runner(TASK, (".tflite",))
class Generator:
    """Continue prompts with a zoo LiteRT decoder.

    Tokenization (byte-level BPE from the sidecar), the sampling loop and
    detokenization run here in Python/NumPy; the `.tflite` file runs the
    network. Greedy output is token-for-token Keras `generate`'s (zoo's
    export checks it for the float32 file).

    Safe to share between threads: the caches live in the interpreter, so a
    generation (prefill and every decode step) holds the interpreter's lock;
    generations from several threads run one after another, each exactly as
    it would alone. (An interpreter per thread was measured too: with 8
    threads on 2 cores it was not steadily faster, and it costs the whole
    interpreter, XNNPACK's packed weights included, per thread that ever
    generates, unbounded in a server's thread pool. Where that trade is
    wanted, give each worker its own `Generator`.)

    Args:
        model_path: the `.tflite` file; its sidecar is `<same name>.json`.
        num_threads: interpreter threads.
        delegates: as for `TextClassifierRunner`.

    Example:
    >>> generator = Generator("saved_models/gpt2_tiny/1/litert/model.tflite")
    >>> generator.generate(["ROMEO:", "JULIET:"], max_length=32, sampler="top_k", seed=0)
    """

    def __init__(self, model_path, num_threads=2, delegates=True, verify=True):
        self.model_path = pathlib.Path(model_path)
        if self.model_path.suffix != ".tflite":
            raise ValueError(f"{self.model_path}: zoo's decoders are LiteRT files (.tflite)")
        if verify:
            verification.verify_model_file(self.model_path)
        self.spec = read_sidecar(self.model_path, TASK)
        tokenizer, generation = self.spec["tokenizer"], self.spec["generation"]
        self.tokenizer = ReferenceBytePairTokenizer(tokenizer["vocabulary"], tokenizer["merges"])
        self.start_token_id = int(generation["start_token_id"])
        self.end_token_id = int(generation["end_token_id"])
        self.cache_length = int(generation["cache_length"])
        self.prefill_length = int(generation["prefill_length"])
        self._cache_inputs = generation["cache_inputs"]
        self._replace_cache = generation.get("cache_update", "rows") == "replace"
        # Every decode step reads all the weights XNNPACK packs while the signatures are set up: on huge pages.
        with backends.huge_pages():
            self.model = backends.open_model(self.model_path, None if delegates else "builtin", num_threads)
            verification.check_sidecar_against_model(self.spec, self.model, sidecar_path(self.model_path))
            # The caches stay inside the interpreter: each step writes only its new rows into them
            # (handing the whole cache to the signature runner every step copied it every token).
            self._prefill = self.model.resident_signature("prefill")
            self._decode = self.model.resident_signature("decode")
        # Rows a step has not written yet are masked out of attention, but they still meet a zero
        # weight in a matmul: they must hold numbers (a fresh buffer may hold NaN bit patterns).
        # Only prefill's: every generation starts there, and prefill hands decode its whole caches.
        for name in self._cache_names():
            self._prefill.input(name)[...] = 0.0

    def prompt_token_ids(self, prompt):
        """Start token (`<|endoftext|>`) + the prompt's ids, as Keras `generate` feeds them."""
        return [self.start_token_id] + self.tokenizer.encode(prompt)

    def prefill(self, prompt_ids):
        """Run the prompt (at most `cache_length` ids) through `prefill`, chunk by chunk, and hand its
        keys and values to `decode`.

        Returns `{"logits": [1, V] after the last id}`. The caches it leaves
        belong to the caller only while it holds `self.model.lock` (re-entrant).
        """
        with self.model.lock:
            prefill, chunk = self._prefill, self.prefill_length
            if self._replace_cache:
                # A recurrent state is the whole cache: every prompt starts from zeros, not where the
                # last generation ended. (A KV cache needs no reset: prefill writes every row it reads.)
                for name in self._cache_names():
                    prefill.input(name)[...] = 0.0
            for start in range(0, len(prompt_ids), chunk):
                piece = prompt_ids[start : start + chunk]
                token_ids = np.zeros((1, chunk), np.int32)
                token_ids[0, : len(piece)] = piece
                prefill.set("token_ids", token_ids)
                prefill.set("position", start)
                prefill.set("length", len(piece))
                prefill.invoke()
                # Rows past the prompt get the padding's keys; decode overwrites
                # each before any later token reads it.
                self._update_cache(prefill, start)
            logits = np.array(prefill.output("logits"))
            for name in self._cache_names():
                self._decode.input(name)[...] = prefill.input(name)
            return {"logits": logits}

    def _cache_names(self):
        return [name for pair in self._cache_inputs for name in pair]

    def _update_cache(self, signature, position):
        """What the signature's last invoke returned, into its own cache inputs: the whole state
        ("replace"), or `cache_update` `[1, layers, 2, heads, tokens, head_dim]` at rows `position...`."""
        if self._replace_cache:
            for name in self._cache_names():
                signature.input(name)[...] = signature.output(name)
            return
        cache_update = signature.output("cache_update")
        tokens = cache_update.shape[4]
        for layer, pair in enumerate(self._cache_inputs):
            for kind, name in enumerate(pair):
                signature.input(name)[0, :, position : position + tokens] = cache_update[0, layer, kind]

    def generate_token_ids(self, prompt_ids, max_length=64, sampler="greedy", temperature=1.0, top_k=10,
                           top_p=0.9, seed=None):
        """New token ids after `prompt_ids` (`<|endoftext|>` included if reached).

        Args:
            max_length: total tokens, prompt included; at most the file's
                `cache_length` (more is refused, as on every path).
            seed: an integer in [0, 2**32) for a reproducible sample; None draws a fresh one.
        """
        check_generation_arguments(sampler, max_length, temperature, top_k, top_p, seed=seed,
                                   vocabulary_size=self.tokenizer.vocabulary_size(), context_length=self.cache_length)
        prompt_ids = list(prompt_ids)
        if not prompt_ids:
            raise ValueError("prompt_ids is empty: it needs at least the start token")
        check_prompt_lengths([len(prompt_ids)], max_length)
        rng = np.random.default_rng(seed)
        with self.model.lock:  # the caches are the interpreter's: one generation at a time
            logits = self.prefill(prompt_ids)["logits"][0]
            decode = self._decode
            length, new_ids = len(prompt_ids), []
            while length < max_length:
                token = _sample(logits, sampler, temperature, top_k, top_p, rng)
                new_ids.append(token)
                length += 1
                if token == self.end_token_id or length == max_length:
                    break
                position = length - 1
                decode.input("token_id")[0, 0] = token
                decode.set("position", position)
                decode.invoke()
                # A KV decoder hands back only this token's keys/values: that row is all that is written.
                self._update_cache(decode, position)
                # Sampled from the interpreter's own buffer, uncopied: `_sample` is done with it before the
                # next invoke overwrites it.
                logits = decode.output("logits")[0]
        return new_ids

    def generate(self, prompts, max_length=64, sampler="greedy", strip_prompt=False, **sampler_args):
        """Continue a prompt (or a list of them); returns text like Keras `generate`.

        Invalid UTF-8 in the generated bytes reads as U+FFFD, as on every path.
        """
        prompts, single = prompt_list(prompts)
        # Every argument and prompt is checked before the first is generated (as in Keras `generate`).
        check_generation_arguments(sampler, max_length, **sampler_args,
                                   vocabulary_size=self.tokenizer.vocabulary_size(), context_length=self.cache_length)
        all_prompt_ids = [self.prompt_token_ids(prompt) for prompt in prompts]
        check_prompt_lengths([len(ids) for ids in all_prompt_ids], max_length)
        special = (self.start_token_id, self.end_token_id)
        outputs = []
        for prompt_ids in all_prompt_ids:
            new_ids = [token for token in self.generate_token_ids(prompt_ids, max_length, sampler, **sampler_args)
                       if token != self.end_token_id]
            kept = new_ids if strip_prompt else [t for t in prompt_ids if t not in special] + new_ids
            outputs.append(self.tokenizer.decode(kept))
        return outputs[0] if single else outputs

    @classmethod
    def probe(cls, model_path, runtime, inputs):
        """Greedy tokens and the prompts' last logits on validation prompts (`zoo.runtime.validation_probe`)."""
        generator = cls(model_path, delegates=runtime != "builtin")
        prompts = np.split(inputs["prompt_ids"], np.cumsum(inputs["prompt_lengths"])[:-1])
        tokens = [generator.generate_token_ids(ids.tolist(), int(inputs["max_length"])) for ids in prompts]
        logits = [generator.prefill(ids.tolist())["logits"][0] for ids in prompts]
        return {"tokens": np.array([t for row in tokens for t in row], np.int32),
                "token_lengths": np.array([len(row) for row in tokens], np.int32),
                "prefill_logits": np.stack(logits)}


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


@registry.sidecar_fields(TASK)
def check_sidecar(field, spec):
    """A decoder's sidecar: its cache contract, its BPE tokenizer, its start and end tokens."""
    field.get("generation", lambda v: isinstance(v, dict), "an object")
    cache_inputs = field.get("generation.cache_inputs", lambda v: isinstance(v, list) and v and all(
        isinstance(pair, list) and len(pair) == 2 and all(is_text(name) for name in pair) for pair in v),
        "a non-empty list of input name pairs (keys and values, or a recurrent layer's two states), one per layer")
    names = [name for pair in cache_inputs for name in pair]
    check_unique(field, "generation.cache_inputs", names)
    update = spec["generation"].get("cache_update", "rows")
    if update not in ("rows", "replace"):
        raise field.error("generation.cache_update", "'rows' or 'replace'", update)
    # Where each step's cache comes back: one `cache_update` tensor, or every cache tensor by its name.
    returned = ["cache_update"] if update == "rows" else names
    for name in ("prefill", "decode"):
        field.get(f"signatures.{name}", lambda v: True, "")
        for kind, expected in (("inputs", names), ("outputs", returned)):
            present = [tensor["name"] for tensor in spec["signatures"][name][kind]]
            missing = [cache for cache in expected if cache not in present]
            if missing:
                raise SidecarError(f"{field.path}: field 'signatures.{name}.{kind}': expected the cache {kind} of "
                                   f"'generation.cache_inputs', got none named {missing[0]!r}")
    field.get("tokenizer.type", lambda v: v == "gpt2_byte_level_bpe", "'gpt2_byte_level_bpe'")
    vocabulary = field.get("tokenizer.vocabulary", lambda v: isinstance(v, dict) and v and all(
        is_text(token) and is_int(index, 0) for token, index in v.items()), "an object token -> id >= 0")
    if sorted(vocabulary.values()) != list(range(len(vocabulary))):
        raise SidecarError(f"{field.path}: field 'tokenizer.vocabulary': expected the ids 0..{len(vocabulary) - 1}, "
                           f"each once, got ids that repeat or skip")
    field.get("tokenizer.merges", lambda v: isinstance(v, list) and all(
        isinstance(rule, str) and len(rule.split(" ")) == 2 and all(rule.split(" ")) for rule in v),
        "a list of 'left right' merge rules")
    if update == "rows" and "cache_layout" in spec["generation"]:
        rank = len(next(t["shape"] for t in spec["signatures"]["decode"]["inputs"] if t["name"] == names[0]))
        field.get("generation.cache_layout", lambda v: isinstance(v, list) and len(v) == rank and "position" in v
                  and all(is_text(axis) for axis in v) and len(set(v)) == rank,
                  f"{rank} distinct axis names, 'position' among them")
    cache_length = field.get("generation.cache_length", lambda v: is_int(v, 2), "an integer >= 2")
    field.get("generation.prefill_length", lambda v: is_int(v, 1) and v <= cache_length,
              f"an integer in [1, cache_length={cache_length}]")
    for key in ("start_token_id", "end_token_id"):
        field.get(f"generation.{key}", lambda v: is_int(v, 0) and v < len(vocabulary),
                  f"a token id in [0, {len(vocabulary)})")


@registry.sidecar_fits_model(TASK)
def check_against_model(spec, shapes, sidecar):
    """A KV cache holds `cache_length` positions; prefill takes `prefill_length` ids; one logit per token."""
    generation = spec["generation"]
    if generation.get("cache_update", "rows") == "rows":
        cache = shapes[("decode", generation["cache_inputs"][0][0])]
        layout = generation.get("cache_layout")
        position_axis = layout.index("position") if isinstance(layout, list) and "position" in layout else -2
        verification.same_dimension(sidecar, "generation.cache_length", generation["cache_length"],
                                    cache[position_axis:][:1], "the model file's cache holds {} positions")
    verification.same_dimension(sidecar, "generation.prefill_length", generation["prefill_length"],
                                shapes.get(("prefill", "token_ids"), [])[-1:],
                                "the model file's prefill takes {} token ids")
    verification.same_dimension(sidecar, "tokenizer.vocabulary", len(spec["tokenizer"]["vocabulary"]),
                                shapes.get(("decode", "logits"), [])[-1:], "the model file has {} logits",
                                "{} tokens")
