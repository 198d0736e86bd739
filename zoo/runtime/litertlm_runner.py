"""`LiteRTLMGenerator`: text generation with a `.litertlm` bundle on Google's LiteRT-LM engine.

The engine (`litert_lm`, the litert-lm-api wheel) does everything itself:
tokenizes with the bundle's Hugging Face tokenizer, prepends the bundle's
start token, chunks the prompt over the file's `prefill_<T>` signatures,
owns the KV cache, samples and detokenizes. zoo's bundles
(`zoo.export.formats.litert_lm`) put `<|endoftext|>` as start and stop token,
which is what Keras `generate` feeds and stops on, so greedy output is Keras
greedy output. No TensorFlow here.

Engine set-up: CPU backend (XNNPACK) with `num_threads` threads, float32
activations (the engine's default for a text decoder is float16), the
benchmark counters on (how many tokens each phase ran, and their rates, in
`last_run`). A session per prompt (`apply_prompt_template=False`: the
raw prompt, no chat template), `max_output_tokens` = the new tokens wanted.
LiteRT-LM 0.18.1's CPU sampler is one top-k-then-top-p sampler (k >= 1 is
required): `top_k=1` (top_p 1.0, temperature 1.0) makes it take the most
likely token, i.e. greedy (token for token Keras greedy on GPT-2 small with
random weights, whose logits are near ties); zoo's top_p is k = the whole
vocabulary and p; its top_k is k and p = 1. Its seed is a C int: zoo's seeds
(0 <= seed < 2**32, as on every path) go in as their 32-bit pattern, and no
seed draws a fresh one per generation (the engine's own default is always 0).
Prompts that leave no room within the context are refused before the engine
runs; prompt + output stop at the context length. The engine's own log
lines (dozens per start-up) are off unless `engine_logs=True`.

Safe to share between threads: each generation (and every other engine
call) holds the runner's lock, so generations from several threads run one
after another; `last_run` is the calling thread's own last run.

The Python API returns text only. `generate_token_ids` recovers the ids from
the stream: the engine streams one chunk per generated token, and each chunk
is looked up in a table of every id's text (built once, ~0.1 s for GPT-2's
50,257 ids, with the engine's own `detokenize`); the engine's decode counter
tells whether the run ended on the stop token. Where that cannot be exact
(the engine holds back byte tokens until they complete a UTF-8 character and
streams them as one chunk; a chunk that is not one token's text is
re-tokenized) `last_run["exact_ids"]` is False.
"""

import os
import pathlib
import random
import threading
import time

import numpy as np

from zoo import extras
from zoo.runtime import registry
from zoo.runtime import verify as verification
from zoo.runtime.generator import SAMPLERS, check_generation_arguments, check_prompt_lengths, prompt_list

GREEDY = {"top_k": 1, "top_p": 1.0, "temperature": 1.0}


def sampler_config(sampler="greedy", *, temperature=1.0, top_k=10, top_p=0.9, num_beams=4, seed=None):
    """`LiteRTLMGenerator(sampler=...)` for zoo's sampler names and arguments, checked by zoo's rules
    (beam search, `num_beams`, is Keras's only: refused here like any other unknown sampler).

    top_p's `top_k` is None: every token of the vocabulary (the runner fills in its size).
    """
    check_generation_arguments(sampler, temperature=temperature, top_k=top_k, top_p=top_p, num_beams=num_beams,
                               seed=seed, samplers=SAMPLERS)
    if sampler == "greedy":
        return dict(GREEDY)
    if sampler == "top_k":
        return {"top_k": int(top_k), "top_p": 1.0, "temperature": float(temperature), "seed": seed}
    return {"top_k": None, "top_p": float(top_p), "temperature": float(temperature), "seed": seed}


def default_cache_dir():
    """Where the engine keeps what it compiles for this machine (its `*.xnnpack_cache`): the user's cache
    folder, never beside the bundle, whose version folder must stay as exported (and verifiable)."""
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    folder = base / "zoo" / "litert_lm"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@registry.register_runner("causal-lm", (".litertlm",), sidecar=False)
class LiteRTLMGenerator:
    """Continue prompts with a `.litertlm` bundle.

    Args:
        path: the `.litertlm` file.
        num_threads: CPU threads for the engine.
        activation: "float32" (default, what zoo validates) or "float16"
            (the engine's own default for text decoders).
        max_num_tokens: context length (prompt, start token and output);
            default: the bundle's `max_num_tokens` (its cache length).
        sampler: `litert_lm.SamplerConfig` arguments (`sampler_config()`
            makes them from zoo's names); default greedy. `top_k=None`
            means every token; `seed=None` a fresh seed per generation.
        verify: check the bundle's sha256 against the manifest of the
            exported version it sits in (if any) before the engine opens it.
        cache_dir: where the engine keeps what it compiles for this machine
            (default `default_cache_dir()`, outside the version folder).
        engine_logs: let the engine print its own log lines (off: a
            process-wide setting of the engine, `litert_lm.set_min_log_severity`).

    Example:
    >>> generator = LiteRTLMGenerator("saved_models/gpt2_tiny/model.litertlm")
    >>> generator.generate("ROMEO:", max_new_tokens=16)
    """

    def __init__(self, path, num_threads=2, activation="float32", max_num_tokens=None, sampler=None, verify=True,
                 cache_dir=None, engine_logs=False):
        litert_lm = extras.require("litert_lm", str(path))
        self._litert_lm = litert_lm
        litert_lm.set_min_log_severity(litert_lm.LogSeverity.INFO if engine_logs else litert_lm.LogSeverity.SILENT)
        self._lock = threading.RLock()
        self._threads = threading.local()
        self.path = pathlib.Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such LiteRT-LM bundle")
        if verify:  # the bundle's sha256, where it sits in an exported version
            verification.verify_model_file(self.path)
        activations = {"float32": litert_lm.ActivationDataType.FLOAT32,
                       "float16": litert_lm.ActivationDataType.FLOAT16}
        if activation not in activations:
            raise ValueError(f"activation must be one of {sorted(activations)}, got {activation!r}")
        self.sampler = dict(GREEDY if sampler is None else sampler)
        started = time.perf_counter()
        self.engine = litert_lm.Engine(
            str(self.path), backend=litert_lm.Backend.CPU(thread_count=int(num_threads)),
            max_num_tokens=max_num_tokens, activation_data_type=activations[activation], enable_benchmark=True,
            cache_dir=str(cache_dir or default_cache_dir()),
        )
        self.engine_seconds = time.perf_counter() - started
        if max_num_tokens is None:
            with litert_lm.ModelInfo(str(self.path)) as info:
                max_num_tokens = info.max_context_tokens
        self.context_length = int(max_num_tokens)
        self.start_token_id = self.engine.bos_token_id
        self.stop_token_ids = [ids[0] for ids in self.engine.eos_token_ids if len(ids) == 1]
        self._texts = self._vocabulary = None

    @property
    def last_run(self):
        """Counters and text of the calling thread's last generation on this runner (None before one)."""
        return getattr(self._threads, "last_run", None)

    @last_run.setter
    def last_run(self, value):
        self._threads.last_run = value

    def close(self):
        with self._lock:
            self.engine.close()

    @classmethod
    def probe(cls, model_path, runtime, inputs):
        """Greedy tokens on validation prompts (`zoo.runtime.validation_probe`): the engine tokenizes the
        prompts, runs its own prefill/decode loop and hands out text only (`exact_ids` says where the ids
        could be recovered exactly)."""
        prompt_lengths, max_length = inputs["prompt_lengths"], int(inputs["max_length"])
        tokens, exact, texts = [], [], []
        with cls(model_path) as generator:
            for prompt, length in zip(inputs["prompts"], prompt_lengths):
                tokens.append(generator.generate_token_ids(str(prompt), max_new_tokens=max_length - int(length)))
                exact.append(generator.last_run.get("exact_ids", True))
                texts.append(generator.last_run.get("text", ""))
        return {"tokens": np.array([t for row in tokens for t in row], np.int32),
                "token_lengths": np.array([len(row) for row in tokens], np.int32),
                "exact_ids": np.array(exact, bool), "texts": np.array(texts, dtype=str)}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def tokenize(self, text):
        """The engine's ids for `text` (no start token)."""
        with self._lock:
            return self.engine.tokenize(text)

    def prompt_token_ids(self, prompt):
        """Start token + the prompt's ids: what the engine prefills (and what Keras `generate` feeds)."""
        return [self.start_token_id] + self.tokenize(prompt)

    def _engine_sampler(self):
        """The engine's `SamplerConfig`: top_k None is the whole vocabulary; a seed is the C int with its
        bits, and none is a fresh one (the engine would otherwise always take 0)."""
        config = dict(self.sampler)
        if config.get("top_k") is None:
            config["top_k"] = self._vocabulary_size()
        seed = config.get("seed")
        seed = random.getrandbits(32) if seed is None else int(seed)
        config["seed"] = seed - 2**32 if seed >= 2**31 else seed
        return self._litert_lm.SamplerConfig(**config)

    def _check_prompts(self, prompts, max_length):
        """The prompts as text, each leaving room for a new token within `max_length`; their lengths."""
        prompts, single = prompt_list(prompts)
        check_generation_arguments(max_length=max_length, context_length=self.context_length)
        lengths = [len(self.prompt_token_ids(prompt)) for prompt in prompts]
        check_prompt_lengths(lengths, max_length)
        return prompts, single, lengths

    def _stream(self, prompt, max_new_tokens):
        (prompt,), _, _ = self._check_prompts(prompt, self.context_length)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        with self._lock:  # one engine run at a time
            session = self.engine.create_session(apply_prompt_template=False, sampler_config=self._engine_sampler(),
                                                 max_output_tokens=max_new_tokens)
            try:
                started = time.perf_counter()
                session.run_prefill([prompt])
                prefilled = time.perf_counter()
                chunks = [response.texts[0] for response in session.run_decode_async() if response.texts]
                finished = time.perf_counter()
                info = session.get_benchmark_info()
            finally:
                session.close()
            self.last_run = {
                "prefill_seconds": prefilled - started, "decode_seconds": finished - prefilled,
                "prefill_tokens": info.last_prefill_token_count, "decode_tokens": info.last_decode_token_count,
                "prefill_tokens_per_second": info.last_prefill_tokens_per_second,
                "decode_tokens_per_second": info.last_decode_tokens_per_second,
                "time_to_first_token_seconds": info.time_to_first_token_in_second,
                "text": "".join(chunks),
            }
            return chunks

    def generate_text(self, prompt, max_new_tokens=32):
        """The continuation only (stop token not included)."""
        return "".join(self._stream(prompt, max_new_tokens))

    def generate(self, prompt, max_new_tokens=32, strip_prompt=False, max_length=None):
        """Continue a prompt (or a list of them): prompt + continuation, like Keras `generate`, or the continuation.

        `max_length` (total tokens, prompt and start token included, as on
        zoo's other paths) replaces `max_new_tokens` when given; past the
        context it is refused, as everywhere.
        """
        prompts, single, lengths = self._check_prompts(prompt, max_length or self.context_length)
        texts = []
        for text, length in zip(prompts, lengths):
            continuation = self.generate_text(text, max_length - length if max_length else max_new_tokens)
            texts.append(continuation if strip_prompt else text + continuation)
        return texts[0] if single else texts

    def generate_token_ids(self, prompt, max_new_tokens=32):
        """New token ids after the prompt, the stop token included when the engine stopped on it.

        The same form as `zoo.export.tasks.causal_lm.keras_greedy_token_ids`.
        `self.last_run["exact_ids"]` is False where the ids had to be
        re-tokenized from text (see the module docstring).
        """
        (prompt,), _, _ = self._check_prompts(prompt, self.context_length)
        with self._lock:  # the id table is built once, by one thread
            chunks = self._stream(prompt, max_new_tokens)
            texts = self._token_texts()
            # The decode counter counts every sampled token: the stop token
            # (which streams no text) and tokens the engine held back while
            # they were an incomplete UTF-8 character (those stream as one chunk
            # once complete; a character never completed streams as U+FFFD at
            # the end). So `surplus` is the stop token plus the tokens merged
            # into other chunks.
            decoded = self.last_run["decode_tokens"]
            surplus = decoded - len(chunks)
            # A run without a stop token only ends early at the context's end.
            ended_early = (decoded < int(max_new_tokens)
                           and len(self.prompt_token_ids(prompt)) + decoded < self.context_length)
            if surplus == 1 and not ended_early:
                # The stop token on the very last step, or one merged character:
                # merging needs a non-ASCII chunk.
                exact = all(chunk.isascii() for chunk in chunks)
                stopped = True
            else:
                exact = surplus == (1 if ended_early else 0)
                stopped = ended_early
            ids = []
            for chunk in chunks:
                token = texts.get(chunk)
                if token is None:
                    # Not one token's text: re-tokenized, which need not be the ids the model chose.
                    exact = False
                    ids.extend(self.tokenize(chunk))
                else:
                    ids.append(token)
            if stopped and self.stop_token_ids:
                ids.append(self.stop_token_ids[0])
            self.last_run.update(exact_ids=exact, stopped=stopped, chunks=chunks)
            return ids

    def _token_texts(self):
        """`{text: id}` for every id whose text is its own (valid UTF-8, unique), by the engine's detokenizer."""
        if self._texts is None:
            texts, clashes = {}, set()
            for token in range(self._vocabulary_size()):
                text = self.engine.detokenize([token])
                if not text or "\ufffd" in text or token in self.stop_token_ids:
                    continue
                if text in texts:
                    clashes.add(text)
                texts[text] = token
            self._texts = {text: token for text, token in texts.items() if text not in clashes}
        return self._texts

    def _vocabulary_size(self):
        if self._vocabulary is None:
            self._vocabulary = self._find_vocabulary_size()
        return self._vocabulary

    def _find_vocabulary_size(self):
        # The engine does not expose the vocabulary size. Every id of a
        # byte-level BPE has at least one byte of text, and the engine
        # detokenizes an id past the vocabulary to "": the first such id is
        # the size (ids are dense).
        def known(token):
            return bool(self.engine.detokenize([token]))

        low, high = 0, 1
        while known(high):
            low, high = high, high * 2
        while low + 1 < high:
            middle = (low + high) // 2
            low, high = (middle, high) if known(middle) else (low, middle)
        return high
