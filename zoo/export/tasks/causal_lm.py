"""How a keras-hub `CausalLM` exports: its graphs, its sidecar description, validation prompts, parity rules.

- Serving graph: `generate` (also `serving_default`): `prompts` string
  `[None]`, `max_length` int32 scalar (tokens, prompt and start token
  included) -> `completions` string `[None]` (new text only), `texts`
  (prompt + completion), `token_ids`. Greedy, stops at the end token; the
  tokenizer runs in the graph (keras-hub's BPE: core TF string ops plus
  tensorflow-text's `RegexSplitWithOffsets`, which TF Serving's model server
  links in). `logits`: `token_ids` int32 `[None, None]` -> float32
  `[None, None, vocabulary_size]`.
- Runtime graph (what `zoo.runtime.Generator` runs): `prefill` and `decode`
  against a caller-owned cache, built from the architecture recipe's cached
  step (`zoo.export.architectures`):
  - `prefill`: `token_ids` int32 `[1, prefill_length]` (a chunk of the
    prompt, right-padded with anything), `position` (the chunk's first
    index, a multiple of `prefill_length`), `length` (real tokens in the
    chunk), the caches -> `logits` `[1, vocabulary_size]` at the chunk's
    last real token;
  - `decode`: `token_id` int32 `[1, 1]`, `position`, the caches -> `logits`;
  - and the cache as the recipe updates it: "rows" (a KV cache) returns
    `cache_update` `[1, layers, 2, heads, tokens, head_dim]` for the caller
    to write at rows `position...`; "replace" (a recurrent state) returns
    every cache tensor anew under its input's name.

Validation: greedy generation from the serving graph and from the float32
runtime files must equal Keras `generate` token for token on the validation
prompts; other variants and runtimes report their agreement.
"""

import dataclasses
import hashlib
import json

import keras_hub
import numpy as np
import tensorflow as tf

from zoo.export import validate
from zoo.export.architectures import recipe_for
from zoo.export.errors import ExportError
from zoo.export.graphs import Endpoint, Graph
from zoo.export.tasks import register_task
from zoo.export.tasks.base import ExportTask

GENERATE_SIGNATURE = "generate"
LOGITS_SIGNATURE = "logits"
PREFILL_SIGNATURE = "prefill"
DECODE_SIGNATURE = "decode"
RUNTIME_SIGNATURES = (PREFILL_SIGNATURE, DECODE_SIGNATURE)
# Prompts a causal LM is validated on when none are given.
DEFAULT_PROMPTS = ("ROMEO:", "The king", "First Citizen:\nWe are", "O, what a", "And so", "I will not")
DEFAULT_CACHE_LENGTH = 256
DEFAULT_VALIDATION_LENGTH = 48


@dataclasses.dataclass
class PromptValidation:
    prompts: list
    prompt_ids: list
    max_length: int
    cache_length: int
    # The runtime's pure-Python BPE: the text a streaming runtime shows for Keras's tokens.
    tokenizer: object
    end_token_id: int
    keras_tokens: list = None
    keras_logits: np.ndarray = None


@register_task(keras_hub.models.CausalLM)
class CausalLMExport(ExportTask):
    name = "causal-lm"
    default_formats = ("saved_model", "litert", "litert_lm")
    # int8 weights with float activations ("dynamic_int8") shrinks the file
    # ~4x without calibration; full int8 is not offered for decoders.
    variants = ("float16", "dynamic_int8")
    default_variants = ("dynamic_int8",)

    # === Arguments and data ===

    def options(self, model, cache_length=None, validation_length=None):
        limit = context_limit(model)
        if cache_length is not None and (isinstance(cache_length, bool) or not isinstance(cache_length, int)
                                         or cache_length < 2 or (limit is not None and cache_length > limit)):
            raise ExportError(f"cache_length must be an integer from 2 to the model's context "
                              f"({'max_sequence_length ' + str(limit) if limit else 'no limit'}), got {cache_length!r}")
        cache_length = cache_length or min(DEFAULT_CACHE_LENGTH, limit or DEFAULT_CACHE_LENGTH)
        if validation_length is not None and (isinstance(validation_length, bool)
                                              or not isinstance(validation_length, int) or validation_length < 2):
            raise ExportError(f"validation_length must be an integer >= 2, got {validation_length!r}")
        return {"cache_length": cache_length, "validation_length": validation_length or DEFAULT_VALIDATION_LENGTH}

    def validation_set(self, model, data, calibration_texts, trained_split, options):
        del trained_split  # the prompts are text, not a split
        if calibration_texts is not None:
            raise ExportError("calibration_texts: causal LMs have no full-int8 variant to calibrate")
        if data is None:
            prompts = list(DEFAULT_PROMPTS)
        else:
            prompts = [data] if isinstance(data, str) else list(data)
        if not prompts or not all(isinstance(prompt, str) for prompt in prompts):
            raise ExportError("validation_data for a causal LM must be a list of prompt strings")
        from zoo.preprocessing.bpe_reference import ReferenceBytePairTokenizer

        cache_length = options["cache_length"]
        tokenizer = model.preprocessor.tokenizer
        return PromptValidation(prompts, [prompt_token_ids(model, prompt) for prompt in prompts],
                                min(options["validation_length"], cache_length), cache_length,
                                ReferenceBytePairTokenizer(tokenizer.vocabulary, tokenizer.merges),
                                tokenizer.end_token_id)

    def reference(self, model, validation):
        validation.keras_tokens = keras_greedy_token_ids(model, validation.prompts, validation.max_length)
        decoder = decoder_model(model)
        validation.keras_logits = np.stack([np.asarray(token_logits(decoder, tf.constant([ids], tf.int32)))[0, -1]
                                            for ids in validation.prompt_ids])
        return {"runtime": "keras", "prompts": len(validation.prompts), "max_length": validation.max_length,
                "generated_tokens": sum(len(ids) for ids in validation.keras_tokens)}

    def probe_inputs(self, validation):
        return {"prompt_ids": np.array([i for ids in validation.prompt_ids for i in ids], np.int32),
                "prompt_lengths": np.array([len(ids) for ids in validation.prompt_ids], np.int32),
                "max_length": np.int32(validation.max_length),
                # For runtimes that tokenize the prompts themselves.
                "prompts": np.array(validation.prompts, dtype=str)}

    def validation_examples(self, validation):
        return len(validation.prompts)

    # === Graphs ===

    def serving_graph(self, model, validation, scratch):
        generate = generate_function(model)
        decoder = decoder_model(model)
        generate_signature = [tf.TensorSpec([None], tf.string, name="prompts"),
                              tf.TensorSpec([], tf.int32, name="max_length")]
        prompts = validation.prompts[:4] if validation is not None else []
        return Graph(
            endpoints={
                GENERATE_SIGNATURE: Endpoint(generate, generate_signature),
                "serving_default": Endpoint(generate, generate_signature),
                LOGITS_SIGNATURE: Endpoint(lambda token_ids: {"logits": token_logits(decoder, token_ids)},
                                           [tf.TensorSpec([None, None], tf.int32, name="token_ids")]),
            },
            tracked=[model],
            custom_ops=("RegexSplitWithOffsets (tensorflow-text; linked into TF Serving's model server)",),
            examples={GENERATE_SIGNATURE: [{"prompts": prompts[:1], "max_length": np.int32(16)},
                                           {"prompts": prompts, "max_length": np.int32(16)}]} if prompts else {},
        )

    def serving_outputs(self, signatures, validation):
        generate, logits = signatures[GENERATE_SIGNATURE], signatures[LOGITS_SIGNATURE]
        tokens = []
        for prompt, ids in zip(validation.prompts, validation.prompt_ids):
            row = generate(prompts=tf.constant([prompt]),
                           max_length=tf.constant(validation.max_length, tf.int32))["token_ids"].numpy()[0]
            tokens.append([int(token) for token in row[len(ids):] if token >= 0])
        last_logits = np.stack([logits(token_ids=tf.constant([ids], tf.int32))["logits"].numpy()[0, -1]
                                for ids in validation.prompt_ids])
        return {GENERATE_SIGNATURE: {"tokens": np.array([t for row in tokens for t in row], np.int32),
                                     "token_lengths": np.array([len(row) for row in tokens], np.int32),
                                     "prefill_logits": last_logits}}

    def supports_runtime_files(self, model):
        return recipe_for(model.backbone).cache_update is not None

    def runtime_graph(self, model, target, options):
        """`prefill` + `decode` (module docstring) at batch 1; `target` asks nothing else of a decoder."""
        if not self.supports_runtime_files(model):
            raise ExportError(f"{model.name}: no cached decoding step for {type(model.backbone).__name__} "
                              "(zoo.export.architectures has no recipe for it)")
        backbone, recipe = model.backbone, recipe_for(model.backbone)
        cache_length = options["cache_length"]
        names = [name for pair in recipe.cache_inputs(backbone) for name in pair]
        caches = [tf.TensorSpec(shape, tf.float32, name=name)
                  for name, shape in zip(names, recipe.cache_shapes(backbone, cache_length))]

        def cache_outputs(new):
            return {"cache_update": new} if recipe.cache_update == "rows" else dict(zip(names, new))

        def prefill(token_ids, position, length, *caches):
            hidden, new = recipe.step(backbone, token_ids, position, caches, length=length)
            # Logits only where the prompt ends (`length` real tokens in this chunk).
            last = tf.gather(hidden, length - 1, axis=1)
            return {"logits": recipe.logits(backbone, last), **cache_outputs(new)}

        def decode(token_id, position, *caches):
            hidden, new = recipe.step(backbone, token_id, position, caches)
            # A reshape, not hidden[:, 0]: that would be one more STRIDED_SLICE.
            return {"logits": recipe.logits(backbone, tf.reshape(hidden, [1, -1])), **cache_outputs(new)}

        scalar = [tf.TensorSpec([], tf.int32, name="position")]
        return Graph(
            endpoints={
                PREFILL_SIGNATURE: Endpoint(prefill, [tf.TensorSpec([1, prefill_length(cache_length)], tf.int32,
                                                                    name="token_ids"), *scalar,
                                                      tf.TensorSpec([], tf.int32, name="length"), *caches]),
                DECODE_SIGNATURE: Endpoint(decode, [tf.TensorSpec([1, 1], tf.int32, name="token_id"), *scalar,
                                                    *caches]),
            },
            # The backbone only: no tokenizer table reaches a converter.
            tracked=[backbone],
        )

    def runtime_description(self, model, options):
        """The sidecar `zoo.runtime.Generator` reads beside a decoder: BPE, cache contract, tokens."""
        tokenizer = model.preprocessor.tokenizer
        recipe = recipe_for(model.backbone)
        cache_length = options["cache_length"]
        generation = {
            "cache_length": cache_length,
            "prefill_length": prefill_length(cache_length),
            # Layer by layer, the cache inputs; how a step's outputs update them.
            "cache_inputs": recipe.cache_inputs(model.backbone),
            "cache_update": recipe.cache_update,
            # The start token is the end token, <|endoftext|>, as keras-hub's preprocessor adds it.
            "start_token_id": tokenizer.end_token_id,
            "end_token_id": tokenizer.end_token_id,
        }
        if recipe.cache_update == "rows":
            generation["cache_layout"] = recipe.cache_layout
        return {
            "generation": generation,
            "tokenizer": {"type": "gpt2_byte_level_bpe", "vocabulary": dict(tokenizer.vocabulary),
                          "merges": list(tokenizer.merges)},
        }

    # === Validation ===

    def compare(self, validation, key, outputs, exact):
        """Token agreement per runtime; float32 must reproduce Keras's greedy tokens on its first runtime."""
        figures = None
        for runtime, runtime_outputs in outputs.items():
            tokens = [row.tolist() for row in np.split(runtime_outputs["tokens"],
                                                       np.cumsum(runtime_outputs["token_lengths"])[:-1])]
            by_text = 0
            if "exact_ids" in runtime_outputs:
                # A runtime that streams text only holds back byte tokens until
                # they complete a UTF-8 character: where its ids cannot be
                # recovered exactly, Keras's text is the same generation.
                for index, exact_ids in enumerate(runtime_outputs["exact_ids"]):
                    if not exact_ids and str(runtime_outputs["texts"][index]) == _keras_text(validation, index):
                        tokens[index], by_text = validation.keras_tokens[index], by_text + 1
            runtime_figures = validate.token_agreement(validation.keras_tokens, tokens)
            if "exact_ids" in runtime_outputs:
                runtime_figures["prompts_compared_by_text"] = by_text
            if "prefill_logits" in runtime_outputs:
                runtime_figures["prefill_logits_max_abs_diff"] = float(
                    np.abs(runtime_outputs["prefill_logits"] - validation.keras_logits).max())
            if figures is None:
                # The reference runtime (builtin kernels; the serving graph) must be exact;
                # XNNPACK orders float sums differently, so a near-tie may resolve the
                # other way: it must run, its agreement is reported.
                if exact:
                    validate.require_identical_tokens(f"{key} ({runtime})", runtime_figures, validation.prompts,
                                                      validation.keras_tokens, tokens)
                    if runtime == GENERATE_SIGNATURE:
                        validate.require_float32_parity(f"{key} logits", {
                            "has_nan": False, "max_abs_diff": runtime_figures["prefill_logits_max_abs_diff"],
                            "examples": len(tokens)})
                figures = dict(runtime=runtime, **runtime_figures)
            else:
                figures[runtime] = runtime_figures
        return figures

    # === Reports ===

    def manifest_fields(self, model, options):
        tokenizer = model.preprocessor.tokenizer
        return {
            "task": self.name,
            "shape": {key: value for key, value in model.backbone.get_config().items()
                      if key not in ("name", "trainable", "dtype", "vocabulary_size")},
            "tokenizer": {
                "type": "gpt2_byte_level_bpe",
                "vocabulary_size": tokenizer.vocabulary_size(),
                "end_token_id": tokenizer.end_token_id,
                "vocabulary_sha256": hashlib.sha256(
                    json.dumps(tokenizer.vocabulary, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest(),
                "merges_sha256": validate.text_sha256("\n".join(tokenizer.merges)),
            },
        }

    def format_table(self, parity):
        lines = [f"{'artifact':<30}{'runtime':<13}{'same seqs':>10}{'tokens':>8}{'agree':>8}{'max|Δlogit|':>12}"
                 f"{'size':>10}"]
        for artifact, figures in parity.items():
            if "identical_sequences" not in figures:
                lines.append(f"{artifact:<30}{figures.get('runtime', ''):<13}{'':>10}"
                             f"{figures.get('generated_tokens', 0):>8}")
                continue
            for index, (runtime, row) in enumerate(validate.runtime_rows(figures)):
                logits = row.get("prefill_logits_max_abs_diff")
                lines.append(
                    f"{artifact if index == 0 else '':<30}{runtime:<13}{row['identical_sequences']:>10.0%}"
                    f"{row['generated_tokens']:>8}{row['token_agreement']:>8.1%}"
                    f"{'' if logits is None else format(logits, '.2e'):>12}"
                    f"{validate.format_size(figures.get('bytes')) if index == 0 else '':>10}"
                )
        return "\n".join(lines)


def _keras_text(validation, index):
    """Keras's new tokens for prompt `index` as text, end token left out, invalid UTF-8 as U+FFFD.

    keras-hub's `detokenize` drops invalid bytes instead, so the reference
    BPE decoder (the runtime's) decodes here.
    """
    return validation.tokenizer.decode([token for token in validation.keras_tokens[index]
                                        if token != validation.end_token_id])


def prefill_length(cache_length, longest=16):
    """Tokens per `prefill` call: the largest divisor of `cache_length` up to `longest`.

    Prompts go through in chunks of this many tokens (the last chunk padded):
    a short prompt costs one small chunk, not a pass over the whole cache
    length, and chunks never run past the cache because they divide it.
    """
    return max(size for size in range(1, min(longest, cache_length) + 1) if cache_length % size == 0)


def context_limit(model):
    """The most tokens the model can attend to (GPT-2's `max_sequence_length`), or None without a limit."""
    return getattr(model.backbone, "max_sequence_length", None)


def decoder_model(causal_lm):
    """The same task with no preprocessor (weights shared): token ids only."""
    return type(causal_lm)(backbone=causal_lm.backbone, preprocessor=None)


def token_logits(decoder, token_ids):
    """Next-token logits `[batch, length, vocabulary_size]` for unpadded ids."""
    return decoder({"token_ids": token_ids, "padding_mask": tf.ones_like(token_ids, dtype=tf.bool)})


def generate_function(causal_lm):
    """`(prompts, max_length) -> {"completions", "texts", "token_ids"}`, greedy, traceable."""
    tokenizer = causal_lm.preprocessor.tokenizer
    end = tokenizer.end_token_id
    limit = context_limit(causal_lm)
    model = type(causal_lm)(backbone=causal_lm.backbone, preprocessor=causal_lm.preprocessor)
    model.compile(sampler="greedy")

    def generate(prompts, max_length):
        max_length = tf.clip_by_value(max_length, 1, limit) if limit else tf.maximum(max_length, 1)
        batch = tf.shape(prompts)[0]
        # The start token is <|endoftext|>, as keras-hub's preprocessor adds it.
        token_ids = tf.concat([tf.RaggedTensor.from_tensor(tf.fill([batch, 1], end)), tokenizer(prompts)], axis=1)
        token_ids = token_ids[:, :max_length]
        prompt_mask = tf.sequence_mask(token_ids.row_lengths(), max_length)
        dense = token_ids.to_tensor(default_value=0, shape=tf.stack([batch, max_length]))
        generated = model.generate_step({"token_ids": dense, "padding_mask": prompt_mask}, stop_token_ids=[end])
        kept = tf.logical_and(generated["padding_mask"], tf.not_equal(generated["token_ids"], end))
        completion = tf.ragged.boolean_mask(generated["token_ids"], tf.logical_and(kept, ~prompt_mask))
        text = tf.ragged.boolean_mask(generated["token_ids"], kept)
        return {
            "completions": tokenizer.detokenize(completion),
            "texts": tokenizer.detokenize(text),
            "token_ids": tf.where(generated["padding_mask"], generated["token_ids"], -1),
        }

    return generate


def keras_greedy_token_ids(causal_lm, prompts, max_length):
    """What Keras `generate` (greedy) adds to each prompt: new ids, the end token included.

    One prompt at a time: a batch shares one start index, so longer prompts
    would be partly fed through the cache instead of the prefill, which is
    the same math but not the same float rounding.
    """
    preprocessor = causal_lm.preprocessor
    end = preprocessor.tokenizer.end_token_id
    decoder = decoder_model(causal_lm)
    decoder.compile(sampler="greedy")
    results = []
    for prompt in prompts:
        inputs = preprocessor.generate_preprocess(tf.constant([prompt]), sequence_length=max_length)
        outputs = decoder.generate(inputs, stop_token_ids=[end])
        prompt_length = int(np.asarray(inputs["padding_mask"]).sum())
        ids = np.asarray(outputs["token_ids"])[0]
        mask = np.asarray(outputs["padding_mask"])[0]
        results.append([int(token) for token in ids[prompt_length:][mask[prompt_length:]]])
    return results


def prompt_token_ids(causal_lm, prompt):
    """Start token + the prompt's ids, as Keras `generate` feeds them."""
    tokenizer = causal_lm.preprocessor.tokenizer
    return [tokenizer.end_token_id] + np.asarray(tokenizer(prompt)).tolist()
