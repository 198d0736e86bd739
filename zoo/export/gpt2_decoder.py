"""GPT-2's LiteRT decoder graph: `prefill` and `decode` against a caller-owned KV cache.

The per-architecture hook of the causal-LM export for keras-hub's
`GPT2Backbone`. Two static-shape signatures share a KV cache of a fixed
`cache_length`: one input per layer for its keys and one for its values,
`cache_keys_<layer>` / `cache_values_<layer>` `[1, heads, cache_length,
head_dim]`, each read by attention as it is. The caller owns them: both
signatures read them and return only the new tokens' keys and values
(`cache_update` `[1, layers, 2, heads, tokens, head_dim]`), which the caller
writes at rows `position...` (see `cached_step` for why):
- `prefill`: `token_ids` int32 `[1, prefill_length]` (a chunk of the prompt,
  right-padded with anything), the caches, `position` (the chunk's first
  index, a multiple of `prefill_length`), `length` (real tokens in the chunk)
  -> `logits` `[1, vocabulary_size]` at the chunk's last real token,
  `cache_update`.
- `decode`: `token_id` int32 `[1, 1]`, the caches, `position` int32 scalar
  (the token's index; cache rows `< position` are used) -> `logits`
  `[1, vocabulary_size]`, `cache_update`.
Only the backbone is traced, so no tokenizer table reaches the converter.
`zoo.runtime.Generator` runs the loop.
"""

import pathlib

import numpy as np
import tensorflow as tf

from zoo.export.archive import ExportArchive

PREFILL_SIGNATURE = "prefill"
DECODE_SIGNATURE = "decode"
SIGNATURES = (PREFILL_SIGNATURE, DECODE_SIGNATURE)
# One cache input per layer and kind: a single stacked cache tensor has to be split per layer inside
# the graph (UNPACK), a copy of the whole cache every token (benchmarks/README.md has what it cost).
CACHE_LAYOUT = ["batch", "head", "position", "head_dim"]


def cache_inputs(num_layers):
    """`[[keys, values], ...]`: the cache inputs' names, layer by layer."""
    return [[f"cache_keys_{layer}", f"cache_values_{layer}"] for layer in range(num_layers)]


def cache_shape(backbone, cache_length):
    """One layer's keys (or values) in the LiteRT KV cache: `[1, heads, cache_length, head_dim]`."""
    return [1, backbone.num_heads, int(cache_length), backbone.hidden_dim // backbone.num_heads]


def prefill_length(cache_length, longest=16):
    """Tokens per `prefill` call: the largest divisor of `cache_length` up to `longest`.

    Prompts go through in chunks of this many tokens (the last chunk padded):
    a short prompt costs one small chunk, not a pass over the whole cache
    length, and chunks never run past the cache because they divide it.
    """
    return max(size for size in range(1, min(longest, cache_length) + 1) if cache_length % size == 0)


def cached_step(backbone, token_ids, caches, position):
    """`T` tokens at `position..position+T-1` through GPT-2 against the cache.

    The same math as keras-hub's `GPT2CausalLM.call_with_cache` (the export
    checks greedy output token for token), arranged for TFLite.
    `call_with_cache` slices every layer's cache out of the cache tensor,
    writes the new rows with DYNAMIC_UPDATE_SLICE and restacks the whole
    cache: in a LiteRT file those are STRIDED_SLICE (an element-by-element
    reference kernel that dominated a decode step: benchmarks/README.md) and
    several full copies of the cache per token. Here each layer's keys and
    values come in as tensors of their own and are only read (a reshape
    each, no copy), attention scores the cached rows `< position` and the
    chunk's own keys (causally) separately, and only the chunk's keys and
    values go out.

    Args:
        token_ids: int32 `[1, T]`.
        caches: float32 `cache_shape(backbone, cache_length)` each, in the
            order of `cache_inputs` (layer 0's keys, its values, layer 1's keys, ...).
        position: int32 scalar, the first token's index in the sequence.
    Returns:
        `hidden` `[1, T, hidden_dim]` (after the final layer norm) and
        `cache_update` `[1, layers, 2, heads, T, head_dim]`.
    """
    _, heads, length, head_dim = caches[0].shape
    layers = len(caches) // 2
    tokens = token_ids.shape[1]
    x = backbone.token_embedding(token_ids)
    x = backbone.embeddings_add((x, backbone.position_embedding(x, start_index=position)))
    slabs = [tf.reshape(cache, [heads, length, head_dim]) for cache in caches]
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


def write_conversion_saved_model(backbone, directory, cache_length):
    """SavedModel with static-shape `prefill` and `decode`, the converter's input."""
    shape = cache_shape(backbone, cache_length)
    chunk = prefill_length(cache_length)
    cache_specs = [tf.TensorSpec(shape, tf.float32, name=name)
                   for pair in cache_inputs(backbone.num_layers) for name in pair]

    def prefill(token_ids, position, length, *caches):
        hidden, cache_update = cached_step(backbone, token_ids, caches, position)
        # Logits only where the prompt ends (`length` real tokens in this chunk).
        last = tf.gather(hidden, length - 1, axis=1)
        return {"logits": backbone.token_embedding(last, reverse=True), "cache_update": cache_update}

    def decode(token_id, position, *caches):
        hidden, cache_update = cached_step(backbone, token_id, caches, position)
        # A reshape, not hidden[:, 0]: that would be one more STRIDED_SLICE.
        logits = backbone.token_embedding(tf.reshape(hidden, [1, -1]), reverse=True)
        return {"logits": logits, "cache_update": cache_update}

    archive = ExportArchive()
    archive.track(backbone)
    archive.add_endpoint(
        PREFILL_SIGNATURE, prefill,
        input_signature=[tf.TensorSpec([1, chunk], tf.int32, name="token_ids"),
                         tf.TensorSpec([], tf.int32, name="position"),
                         tf.TensorSpec([], tf.int32, name="length"), *cache_specs],
    )
    archive.add_endpoint(
        DECODE_SIGNATURE, decode,
        input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token_id"),
                         tf.TensorSpec([], tf.int32, name="position"), *cache_specs],
    )
    archive.write_out(str(directory), verbose=False)
    return pathlib.Path(directory)
