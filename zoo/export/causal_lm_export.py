"""How a keras-hub `CausalLM` (GPT-2) exports: its graphs per format, validation prompts, parity rules.

- SavedModel: `generate` (also `serving_default`): `prompts` string `[None]`,
  `max_length` int32 scalar (tokens, prompt and start token included) ->
  `completions` string `[None]` (new text only), `texts` string `[None]`
  (prompt + completion), `token_ids`. Greedy, stops at `<|endoftext|>`. The
  tokenizer runs in the graph (keras-hub's BPE: core TF string ops plus
  tensorflow-text's `RegexSplitWithOffsets`, which TF Serving's model server
  links in). `logits`: `token_ids` int32 `[None, None]` -> `logits` float32
  `[None, None, vocabulary_size]`.
- LiteRT: `prefill` + `decode` with a caller-owned KV cache, built by the
  architecture's decoder hook (`gpt2_decoder`) on the backbone alone.

Validation: greedy generation from the SavedModel and from the float32
LiteRT file must equal Keras `generate` token for token on the validation
prompts; quantized files and the XNNPACK runtime report their agreement.
"""

import dataclasses
import hashlib
import json

import keras_hub
import numpy as np
import tensorflow as tf

from zoo.export import gpt2_decoder, validate
from zoo.export.errors import ExportError
from zoo.export.formats.saved_model import SavedModelGraph
from zoo.runtime.sidecar import SIDECAR_FORMAT

GENERATE_SIGNATURE = "generate"
LOGITS_SIGNATURE = "logits"
# Prompts a causal LM is validated on when none are given.
DEFAULT_PROMPTS = ("ROMEO:", "The king", "First Citizen:\nWe are", "O, what a", "And so", "I will not")
# The decoder graph of each supported backbone.
DECODERS = {keras_hub.models.GPT2Backbone: gpt2_decoder}


@dataclasses.dataclass
class PromptValidation:
    prompts: list
    prompt_ids: list
    max_length: int
    cache_length: int
    keras_tokens: list = None
    keras_logits: np.ndarray = None


class CausalLMExport:
    TASK = "causal-lm"
    DEFAULT_FORMATS = ("saved_model", "tflite", "litertlm")
    # int8 weights with float activations ("dynamic_int8") shrinks the file
    # ~4x without calibration; full int8 is not offered for decoders.
    QUANTIZATIONS = ("float16", "dynamic_int8")
    DEFAULT_QUANTIZATIONS = ("dynamic_int8",)
    LITERT_SIGNATURES = gpt2_decoder.SIGNATURES
    APP_RUNTIMES = {}

    # === Arguments and data ===

    def check_model(self, model, options):
        if getattr(model, "preprocessor", None) is None:
            raise ExportError(f"{model.name}: the model has no preprocessor (tokenizer) attached; zoo exports take text")
        if type(model.backbone) not in DECODERS:
            raise ExportError(f"{model.name}: no LiteRT decoder for {type(model.backbone).__name__}; "
                              f"supported: {[backbone.__name__ for backbone in DECODERS]}")
        limit = model.backbone.max_sequence_length
        cache_length = options.get("cache_length")
        if cache_length is not None and (isinstance(cache_length, bool) or not isinstance(cache_length, int)
                                         or not 2 <= cache_length <= limit):
            raise ExportError(f"cache_length must be an integer from 2 to the model's max_sequence_length {limit}, "
                              f"got {cache_length!r}")

    def validation_set(self, model, validation_data, calibration_texts, trained_split, cache_length=None,
                       validation_length=48):
        del trained_split  # the prompts are text, not a split
        if calibration_texts is not None:
            raise ExportError("calibration_texts: causal LMs have no full-int8 variant to calibrate")
        if validation_data is None:
            prompts = list(DEFAULT_PROMPTS)
        else:
            prompts = [validation_data] if isinstance(validation_data, str) else list(validation_data)
        if not prompts or not all(isinstance(prompt, str) for prompt in prompts):
            raise ExportError("validation_data for a causal LM must be a list of prompt strings")
        cache_length = cache_length or min(256, model.backbone.max_sequence_length)
        return PromptValidation(prompts, [prompt_token_ids(model, prompt) for prompt in prompts],
                                min(validation_length, cache_length), cache_length)

    def reference_figures(self, job):
        validation, model = job.validation, job.model
        validation.keras_tokens = keras_greedy_token_ids(model, validation.prompts, validation.max_length)
        validation.keras_logits = np.stack([
            np.asarray(gpt2_decoder.token_logits(model.backbone, tf.constant([ids], tf.int32)))[0, -1]
            for ids in validation.prompt_ids])
        return {"runtime": "keras", "prompts": len(validation.prompts), "max_length": validation.max_length,
                "generated_tokens": sum(len(ids) for ids in validation.keras_tokens)}

    def runtime_inputs(self, job):
        validation = job.validation
        return {"prompt_ids": np.array([i for ids in validation.prompt_ids for i in ids], np.int32),
                "prompt_lengths": np.array([len(ids) for ids in validation.prompt_ids], np.int32),
                "max_length": np.int32(validation.max_length),
                # LiteRT-LM's engine tokenizes the text itself (with the bundle's tokenizer.json).
                "prompts": np.array(validation.prompts, dtype=str)}

    # === Graphs ===

    def saved_model_graph(self, job):
        causal_lm = job.model
        generate = generate_function(causal_lm)
        decoder = decoder_model(causal_lm)

        def logits(token_ids):
            return {"logits": gpt2_decoder.token_logits(decoder.backbone, token_ids)}

        generate_signature = [tf.TensorSpec([None], tf.string, name="prompts"),
                              tf.TensorSpec([], tf.int32, name="max_length")]
        prompts = job.validation.prompts[:4]
        return SavedModelGraph(
            endpoints=[(GENERATE_SIGNATURE, generate, generate_signature),
                       ("serving_default", generate, generate_signature),
                       (LOGITS_SIGNATURE, logits, [tf.TensorSpec([None, None], tf.int32, name="token_ids")])],
            tracked=[causal_lm],
            warmup_signature=GENERATE_SIGNATURE,
            warmup_batches=[{"prompts": prompts[:1], "max_length": np.int32(16)},
                            {"prompts": prompts, "max_length": np.int32(16)}],
            custom_ops=("RegexSplitWithOffsets (tensorflow-text; linked into TF Serving's model server)",),
        )

    def saved_model_outputs(self, job, loaded):
        validation = job.validation
        generate, logits = loaded.signatures[GENERATE_SIGNATURE], loaded.signatures[LOGITS_SIGNATURE]
        tokens = []
        for prompt, ids in zip(validation.prompts, validation.prompt_ids):
            row = generate(prompts=tf.constant([prompt]),
                           max_length=tf.constant(validation.max_length, tf.int32))["token_ids"].numpy()[0]
            tokens.append([int(token) for token in row[len(ids):] if token >= 0])
        last_logits = np.stack([logits(token_ids=tf.constant([ids], tf.int32))["logits"].numpy()[0, -1]
                                for ids in validation.prompt_ids])
        return {"saved_model": {"tokens": np.array([t for row in tokens for t in row], np.int32),
                                "token_lengths": np.array([len(row) for row in tokens], np.int32),
                                "prefill_logits": last_logits}}

    def litert_conversion_model(self, job, variant):
        directory = job.scratch / "litert_decoder_saved_model"
        if not directory.exists():
            decoder = DECODERS[type(job.model.backbone)]
            decoder.write_conversion_saved_model(job.model.backbone, directory, job.validation.cache_length)
        return directory

    def litert_int8_float_ops(self, model):
        return ()

    def litert_converter_options(self, job, variant):
        return {}

    def litert_file_metadata(self, job, variant, flatbuffer):
        return flatbuffer

    def litert_artifact_fields(self, job, flatbuffer):
        return {}

    def litert_calibration_inputs(self, job):
        raise ExportError("causal LMs have no full-int8 variant")

    def token_ids_endpoint(self, model, batch_size):
        raise ExportError(f"{model.name}: causal LMs export no single token-id graph")

    # === Files, validation, reports ===

    def sidecar(self, job, variant, filename, signatures):
        return decoder_sidecar(job.model, job.name, variant, filename, signatures, job.validation.cache_length)

    def check_sidecar_tokenizer(self, job, path):
        pass  # the probe tokenizes nothing: it gets the model's own prompt ids

    def compare(self, job, key, variant, outputs):
        """Token agreement per runtime; float32 must reproduce Keras's greedy tokens on its first runtime."""
        validation = job.validation
        figures = None
        for runtime, runtime_outputs in outputs.items():
            tokens = [row.tolist() for row in np.split(runtime_outputs["tokens"],
                                                       np.cumsum(runtime_outputs["token_lengths"])[:-1])]
            by_text = 0
            if "exact_ids" in runtime_outputs:
                # LiteRT-LM streams text only, and holds back byte tokens until they
                # complete a UTF-8 character: where its ids cannot be recovered
                # exactly, the same text as Keras's tokens is the same generation.
                for index, exact in enumerate(runtime_outputs["exact_ids"]):
                    if not exact and str(runtime_outputs["texts"][index]) == self._text(job, validation.keras_tokens[index]):
                        tokens[index], by_text = validation.keras_tokens[index], by_text + 1
            runtime_figures = validate.token_agreement(validation.keras_tokens, tokens)
            if "exact_ids" in runtime_outputs:
                runtime_figures["prompts_compared_by_text"] = by_text
            if "prefill_logits" in runtime_outputs:  # LiteRT-LM's engine hands out no logits
                runtime_figures["prefill_logits_max_abs_diff"] = float(
                    np.abs(runtime_outputs["prefill_logits"] - validation.keras_logits).max())

            if figures is None:
                # The reference runtime (builtin kernels; the SavedModel) must be exact;
                # XNNPACK orders float sums differently, so a near-tie may resolve the
                # other way: it must run, its agreement is reported.
                if variant == "float32":
                    validate.require_identical_tokens(f"{key} ({runtime})", runtime_figures, validation.prompts,
                                                      validation.keras_tokens, tokens)
                    if key == "saved_model":
                        validate.require_float32_parity(f"{key} logits", {
                            "has_nan": False, "max_abs_diff": runtime_figures["prefill_logits_max_abs_diff"],
                            "examples": len(tokens)})
                figures = dict(runtime=runtime, **runtime_figures)
            else:
                figures[runtime] = runtime_figures
        return figures

    @staticmethod
    def _text(job, token_ids):
        """New tokens as text, `<|endoftext|>` left out, invalid UTF-8 as U+FFFD (what a streaming engine shows).

        keras-hub's `detokenize` drops invalid bytes instead, so the reference
        BPE decoder (the runtime's) decodes here.
        """
        from zoo.preprocessing.bpe_reference import ReferenceBytePairTokenizer

        tokenizer = job.model.preprocessor.tokenizer
        reference = ReferenceBytePairTokenizer(tokenizer.vocabulary, tokenizer.merges)
        return reference.decode([token for token in token_ids if token != tokenizer.end_token_id])

    def manifest_fields(self, job):
        tokenizer = job.model.preprocessor.tokenizer
        backbone = job.model.backbone
        return {
            "task": self.TASK,
            "shape": {key: backbone.get_config()[key] for key in
                      ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")},
            "tokenizer": {
                "type": "gpt2_byte_level_bpe",
                "vocabulary_size": tokenizer.vocabulary_size(),
                "end_token_id": tokenizer.end_token_id,
                "vocabulary_sha256": hashlib.sha256(
                    json.dumps(tokenizer.vocabulary, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest(),
                "merges_sha256": validate.text_sha256("\n".join(tokenizer.merges)),
            },
        }

    def validation_examples(self, job):
        return len(job.validation.prompts)

    def format_table(self, parity):
        lines = [f"{'artifact':<30}{'runtime':<13}{'same seqs':>10}{'tokens':>8}{'agree':>8}{'max|Δlogit|':>12}"
                 f"{'size':>10}"]
        for artifact, figures in parity.items():
            if "identical_sequences" not in figures:
                lines.append(f"{artifact:<30}{figures.get('runtime', ''):<13}{'':>10}"
                             f"{figures.get('generated_tokens', 0):>8}")
                continue
            runtimes = [(runtime, value) for runtime, value in figures.items() if isinstance(value, dict)]
            for index, (runtime, row) in enumerate([(figures["runtime"], figures)] + runtimes):
                lines.append(
                    f"{artifact if index == 0 else '':<30}{runtime:<13}{row['identical_sequences']:>10.0%}"
                    f"{row['generated_tokens']:>8}{row['token_agreement']:>8.1%}"
                    f"{_format_optional(row.get('prefill_logits_max_abs_diff')):>12}"
                    f"{validate.format_size(figures.get('bytes')) if index == 0 else '':>10}"
                )
        return "\n".join(lines)


def _format_optional(value):
    return "" if value is None else f"{value:.2e}"


def decoder_sidecar(causal_lm, name, variant, filename, signatures, cache_length):
    """The sidecar `zoo.runtime.Generator` reads beside a LiteRT decoder: BPE, cache layout, tensors."""
    tokenizer = causal_lm.preprocessor.tokenizer
    return {
        "format": SIDECAR_FORMAT,
        "task": CausalLMExport.TASK,
        "model": name,
        "file": filename,
        "quantization": variant,
        # Both signatures return only the new tokens' keys/values
        # (`cache_update`): write them into the cache at rows `position...`.
        "signatures": signatures,
        "generation": {
            "cache_length": cache_length,
            "prefill_length": gpt2_decoder.prefill_length(cache_length),
            # Layer by layer, the inputs that hold its keys and its values (`cache_layout` each);
            # `cache_update` [1, layers, 2, heads, tokens, head_dim] is written into them.
            "cache_inputs": gpt2_decoder.cache_inputs(causal_lm.backbone.num_layers),
            "cache_layout": gpt2_decoder.CACHE_LAYOUT,
            # GPT-2's start token is <|endoftext|>, as keras-hub's preprocessor adds it.
            "start_token_id": tokenizer.end_token_id,
            "end_token_id": tokenizer.end_token_id,
        },
        "tokenizer": {
            "type": "gpt2_byte_level_bpe",
            "vocabulary": dict(tokenizer.vocabulary),
            "merges": list(tokenizer.merges),
        },
    }


def decoder_model(causal_lm):
    """The same task with no preprocessor (weights shared): token ids only."""
    return keras_hub.models.GPT2CausalLM(backbone=causal_lm.backbone, preprocessor=None)


def generate_function(causal_lm):
    """`(prompts, max_length) -> {"completions", "texts", "token_ids"}`, greedy, traceable."""
    tokenizer = causal_lm.preprocessor.tokenizer
    end = tokenizer.end_token_id
    limit = causal_lm.backbone.max_sequence_length
    model = keras_hub.models.GPT2CausalLM(backbone=causal_lm.backbone, preprocessor=causal_lm.preprocessor)
    model.compile(sampler="greedy")

    def generate(prompts, max_length):
        max_length = tf.clip_by_value(max_length, 1, limit)
        batch = tf.shape(prompts)[0]
        # GPT-2's start token is <|endoftext|>, as keras-hub's preprocessor adds it.
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
    """What Keras `generate` (greedy) adds to each prompt: new ids, `<|endoftext|>` included.

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
