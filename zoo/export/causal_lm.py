"""Causal LM (GPT-2) artifacts: a TF Serving SavedModel and LiteRT decoders.

SavedModel signatures:
- `generate` (also `serving_default`): `prompts` string `[None]`,
  `max_length` int32 scalar (tokens, prompt and start token included) ->
  `completions` string `[None]` (new text only), `texts` string `[None]`
  (prompt + completion). Greedy, stops at `<|endoftext|>`. The tokenizer runs
  in the graph (keras-hub's BPE: core TF string ops plus tensorflow-text's
  `RegexSplitWithOffsets`, which TF Serving's model server links in).
- `logits`: `token_ids` int32 `[None, None]` -> `logits` float32
  `[None, None, vocabulary_size]`.

LiteRT (builtin ops only), two signatures sharing one KV cache of a fixed
`cache_length`, built on a task *without* a preprocessor (so no tokenizer
table reaches the converter). The cache is `[1, layers, 2, heads,
cache_length, head_dim]` (keys, values), laid out so that attention reads
each layer's keys and values as they are. The caller owns it: both
signatures read it and return only the new tokens' keys and values
(`cache_update` `[1, layers, 2, heads, tokens, head_dim]`), which the caller
writes at rows `position...` (see `cached_step` for why):
- `prefill`: `token_ids` int32 `[1, prefill_length]` (a chunk of the prompt,
  right-padded with anything), `cache`, `position` (the chunk's first index,
  a multiple of `prefill_length`), `length` (real tokens in the chunk) ->
  `logits` `[1, vocabulary_size]` at the chunk's last real token,
  `cache_update`.
- `decode`: `token_id` int32 `[1, 1]`, `cache`, `position` int32 scalar (the
  token's index; cache rows `< position` are used) -> `logits`
  `[1, vocabulary_size]`, `cache_update`.
`zoo.lite.Generator` runs the loop.
"""

import json
import pathlib

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from zoo.export import litert
from zoo.export.archive import ExportArchive
from zoo.lite import CAUSAL_LM_SIDECAR_FORMAT, sidecar_path

GENERATE_SIGNATURE = "generate"
LOGITS_SIGNATURE = "logits"
PREFILL_SIGNATURE = "prefill"
DECODE_SIGNATURE = "decode"
LITERT_SIGNATURES = (PREFILL_SIGNATURE, DECODE_SIGNATURE)
# The LiteRT variants a causal LM gets: int8 weights with float activations
# ("dynamic_int8") is the one that shrinks the file ~4x without calibration.
QUANTIZATIONS = ("float16", "dynamic_int8")


def is_causal_lm(model):
    return isinstance(model, keras_hub.models.CausalLM)


def decoder_model(causal_lm):
    """The same task with no preprocessor (weights shared): token ids only."""
    return keras_hub.models.GPT2CausalLM(backbone=causal_lm.backbone, preprocessor=None)


def cache_shape(backbone, cache_length):
    """The LiteRT KV cache: `[1, layers, 2 (keys, values), heads, cache_length, head_dim]`."""
    return [1, backbone.num_layers, 2, backbone.num_heads, int(cache_length),
            backbone.hidden_dim // backbone.num_heads]


def prefill_length(cache_length, longest=16):
    """Tokens per `prefill` call: the largest divisor of `cache_length` up to `longest`.

    Prompts go through in chunks of this many tokens (the last chunk padded):
    a short prompt costs one small chunk, not a pass over the whole cache
    length, and chunks never run past the cache because they divide it.
    """
    return max(size for size in range(1, min(longest, cache_length) + 1) if cache_length % size == 0)


def cached_step(backbone, token_ids, cache, position):
    """`T` tokens at `position..position+T-1` through GPT-2 against the cache.

    The same math as keras-hub's `GPT2CausalLM.call_with_cache` (the export
    checks greedy output token for token), arranged for TFLite.
    `call_with_cache` slices every layer's cache out of the cache tensor,
    writes the new rows with DYNAMIC_UPDATE_SLICE and restacks the whole
    cache: in a LiteRT file those are STRIDED_SLICE (an element-by-element
    reference kernel: 52% of a float32 and 65% of an int8 GPT-2 small decode
    step under `perf`) and several full copies of the cache per token. Here
    the cache is only read: UNPACK hands each layer its keys and values
    (one memcpy), attention scores the cached rows `< position` and the
    chunk's own keys (causally) separately, and only the chunk's keys and
    values go out.

    Args:
        token_ids: int32 `[1, T]`.
        cache: float32 `cache_shape(backbone, cache_length)`.
        position: int32 scalar, the first token's index in the sequence.
    Returns:
        `hidden` `[1, T, hidden_dim]` (after the final layer norm) and
        `cache_update` `[1, layers, 2, heads, T, head_dim]`.
    """
    _, layers, _, heads, length, head_dim = cache.shape
    tokens = token_ids.shape[1]
    x = backbone.token_embedding(token_ids)
    x = backbone.embeddings_add((x, backbone.position_embedding(x, start_index=position)))
    slabs = tf.unstack(tf.reshape(cache, [layers * 2, heads, length, head_dim]), axis=0)
    written = tf.reshape(tf.range(length) < position, [1, 1, length])
    causal = tf.constant(np.tril(np.ones((1, tokens, tokens), bool)))
    scale = 1.0 / np.sqrt(head_dim)

    def by_head(projection):  # [1, T, heads, head_dim] -> [heads, T, head_dim]
        # Reshapes, not projection[0] (a STRIDED_SLICE); with one token the
        # transpose moves nothing, so it is a reshape too.
        if tokens == 1:
            return tf.reshape(projection, [heads, 1, head_dim])
        return tf.transpose(tf.reshape(projection, [tokens, heads, head_dim]), [1, 0, 2])

    updates = []
    for index, layer in enumerate(backbone.transformer_layers):
        attention = layer._self_attention_layer
        keys, values = slabs[2 * index], slabs[2 * index + 1]  # [heads, length, head_dim]
        hidden = layer._self_attention_layer_norm(x)
        query = by_head(attention._query_dense(hidden))
        key = by_head(attention._key_dense(hidden))
        value = by_head(attention._value_dense(hidden))
        # Keras scales the query; scaling the scores is the same math, and
        # keeps the converter from folding the scale into a second copy of
        # the query weights.
        cached_scores = tf.where(written, tf.matmul(query, keys, transpose_b=True) * scale, -1e9)
        own_scores = tf.where(causal, tf.matmul(query, key, transpose_b=True) * scale, -1e9)
        cached_weights, own_weights = tf.split(
            tf.nn.softmax(tf.concat([cached_scores, own_scores], axis=-1)), [length, tokens], axis=-1
        )
        mixed = tf.matmul(cached_weights, values) + tf.matmul(own_weights, value)  # [heads, T, head_dim]
        mixed = tf.reshape(tf.transpose(mixed, [1, 0, 2]) if tokens > 1 else mixed, [1, tokens, heads, head_dim])
        x = x + attention._output_dense(mixed)
        hidden = layer._feedforward_layer_norm(x)
        x = x + layer._feedforward_output_dense(layer._feedforward_intermediate_dense(hidden))
        updates.append(tf.stack([key, value]))
    update = tf.reshape(tf.stack(updates), [1, layers, 2, heads, tokens, head_dim])
    return backbone.layer_norm(x), update


def token_logits(backbone, token_ids):
    """Next-token logits `[batch, length, vocabulary_size]` for unpadded ids."""
    hidden = backbone({"token_ids": token_ids, "padding_mask": tf.ones_like(token_ids, dtype=tf.bool)})
    return backbone.token_embedding(hidden, reverse=True)


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


def write_saved_model(causal_lm, directory, warmup_prompts=(), model_name=None):
    """The TF Serving SavedModel (`generate`/`serving_default`, `logits`)."""
    from zoo.export.saved_model import write_warmup_requests

    generate = generate_function(causal_lm)
    decoder = decoder_model(causal_lm)

    def logits(token_ids):
        return {"logits": token_logits(decoder.backbone, token_ids)}

    generate_signature = [tf.TensorSpec([None], tf.string, name="prompts"),
                          tf.TensorSpec([], tf.int32, name="max_length")]
    archive = ExportArchive()
    archive.track(causal_lm)
    archive.add_endpoint(GENERATE_SIGNATURE, generate, input_signature=generate_signature)
    archive.add_endpoint("serving_default", generate, input_signature=generate_signature)
    archive.add_endpoint(
        LOGITS_SIGNATURE, logits, input_signature=[tf.TensorSpec([None, None], tf.int32, name="token_ids")]
    )
    archive.write_out(str(directory), verbose=False)
    if warmup_prompts:
        prompts = list(warmup_prompts)
        write_warmup_requests(
            directory, model_name or causal_lm.name, GENERATE_SIGNATURE,
            [{"prompts": prompts[:1], "max_length": np.int32(16)}, {"prompts": prompts, "max_length": np.int32(16)}],
        )
    return pathlib.Path(directory)


def write_conversion_saved_model(causal_lm, directory, cache_length):
    """SavedModel with static-shape `prefill` and `decode`, the converter's input."""
    # Only the backbone is traced (`cached_step`), so no tokenizer table
    # reaches the converter.
    backbone = causal_lm.backbone
    shape = cache_shape(backbone, cache_length)
    chunk = prefill_length(cache_length)

    def prefill(token_ids, cache, position, length):
        hidden, cache_update = cached_step(backbone, token_ids, cache, position)
        # Logits only where the prompt ends (`length` real tokens in this chunk).
        last = tf.gather(hidden, length - 1, axis=1)
        return {"logits": backbone.token_embedding(last, reverse=True), "cache_update": cache_update}

    def decode(token_id, cache, position):
        hidden, cache_update = cached_step(backbone, token_id, cache, position)
        # A reshape, not hidden[:, 0]: that would be one more STRIDED_SLICE.
        logits = backbone.token_embedding(tf.reshape(hidden, [1, -1]), reverse=True)
        return {"logits": logits, "cache_update": cache_update}

    archive = ExportArchive()
    archive.track(backbone)
    archive.add_endpoint(
        PREFILL_SIGNATURE, prefill,
        input_signature=[tf.TensorSpec([1, chunk], tf.int32, name="token_ids"),
                         tf.TensorSpec(shape, tf.float32, name="cache"),
                         tf.TensorSpec([], tf.int32, name="position"),
                         tf.TensorSpec([], tf.int32, name="length")],
    )
    archive.add_endpoint(
        DECODE_SIGNATURE, decode,
        input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token_id"),
                         tf.TensorSpec(shape, tf.float32, name="cache"),
                         tf.TensorSpec([], tf.int32, name="position")],
    )
    archive.write_out(str(directory), verbose=False)
    return pathlib.Path(directory)


def convert(saved_model_dir, quantization=None):
    return litert.convert(saved_model_dir, quantization, signature_keys=LITERT_SIGNATURES)


def write_litert_file(model, conversion_model, path, quantization, cache_length):
    """Convert, write `path` and its sidecar; return `(flatbuffer, sidecar)`."""
    flatbuffer = convert(conversion_model, quantization)
    path = pathlib.Path(path)
    path.write_bytes(flatbuffer)
    sidecar = litert_sidecar(model, quantization, cache_length)
    sidecar_path(path).write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    return flatbuffer, sidecar


def litert_sidecar(model, quantization, cache_length):
    """The JSON `zoo.lite.Generator` reads beside the file: BPE, cache layout, tensors."""
    tokenizer = model.preprocessor.tokenizer
    shape = cache_shape(model.backbone, cache_length)
    vocabulary_size = model.backbone.vocabulary_size
    cache = {"name": "cache", "dtype": "float32", "shape": shape,
             "layout": ["batch", "layer", "keys_values", "head", "position", "head_dim"]}
    chunk = prefill_length(cache_length)
    position = {"name": "position", "dtype": "int32", "shape": []}
    logits = {"name": "logits", "dtype": "float32", "shape": [1, vocabulary_size]}

    def update(tokens):
        return {"name": "cache_update", "dtype": "float32", "shape": shape[:4] + [tokens, shape[5]]}

    return {
        "format": CAUSAL_LM_SIDECAR_FORMAT,
        "model": model.name,
        "quantization": quantization or "float32",
        "cache_length": cache_length,
        "prefill_length": chunk,
        "signatures": {"prefill": PREFILL_SIGNATURE, "decode": DECODE_SIGNATURE},
        "inputs": {
            "prefill": [{"name": "token_ids", "dtype": "int32", "shape": [1, chunk]}, cache, position,
                        {"name": "length", "dtype": "int32", "shape": []}],
            "decode": [{"name": "token_id", "dtype": "int32", "shape": [1, 1]}, cache, position],
        },
        # Both return only the new tokens' keys/values: write them into the
        # cache at rows `position...` before the next call.
        "outputs": {"prefill": [logits, update(chunk)], "decode": [logits, update(1)]},
        "tokenizer": {
            "type": "gpt2_byte_level_bpe",
            "start_token_id": tokenizer.end_token_id,
            "end_token_id": tokenizer.end_token_id,
            "vocabulary": dict(tokenizer.vocabulary),
            "merges": list(tokenizer.merges),
        },
    }


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
