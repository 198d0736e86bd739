"""GPT-2's recipe (keras-hub `GPT2Backbone`): one decoding step against a KV cache, in both cache layouts.

The cache is one tensor per layer for its keys and one for its values,
`[1, heads, cache_length, head_dim]` (`cache_shapes`, in `cache_inputs`
order: layer 0's keys, its values, layer 1's keys, ...), each read by
attention as it is. `step` runs `T` tokens at positions `start..start+T-1`:
- `in_place=False` (cache update "rows", zoo's `Generator`): the caches are
  only read. Attention scores the cached rows `< start` and the chunk's own
  keys (causally) separately, and the step returns only the chunk's keys and
  values, `[1, layers, 2, heads, T, head_dim]`, which the caller writes at
  rows `start...`. keras-hub's `call_with_cache` instead slices every
  layer's cache out of one stacked tensor, writes the new rows and restacks
  it: in a LiteRT file those are STRIDED_SLICE (an element-by-element
  reference kernel that dominated a decode step: benchmarks/README.md) and
  several full copies of the cache per token.
- `in_place=True` (LiteRT-LM's engine binds each cache input and its output
  to one buffer): the chunk's keys and values are written into the caches at
  row `start` (DYNAMIC_UPDATE_SLICE), attention reads the updated caches (the
  rows up to each token's own position), and the whole caches are returned.

The math is keras-hub's `GPT2CausalLM.call_with_cache` (the same layers in
the same order); every export checks greedy output token for token.
"""

import keras_hub
import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from zoo.export.architectures import Recipe, register_recipe

CACHE_LAYOUT = ["batch", "head", "position", "head_dim"]


@register_recipe(keras_hub.models.GPT2Backbone)
class GPT2Recipe(Recipe):
    cache_update = "rows"
    cache_layout = CACHE_LAYOUT

    def cache_inputs(self, backbone):
        return [[f"cache_keys_{layer}", f"cache_values_{layer}"] for layer in range(backbone.num_layers)]

    def cache_shapes(self, backbone, cache_length):
        shape = [1, backbone.num_heads, int(cache_length), backbone.hidden_dim // backbone.num_heads]
        return [shape] * (2 * backbone.num_layers)


    def logits(self, backbone, hidden):
        return backbone.token_embedding(hidden, reverse=True)

    def step(self, backbone, token_ids, start, caches, length=None, in_place=False):
        """`T` tokens at `start...` through GPT-2 against `caches`.

        Args:
            token_ids: int32 `[1, T]`.
            start: int32 scalar, the first token's position.
            caches: the cache tensors, in `cache_inputs` order.
            length: unused: rows a chunk writes past its real tokens are
                written again before any later token reads them.
        Returns:
            `hidden` `[1, T, hidden_dim]` (after the final layer norm), and the
            new rows `[1, layers, 2, heads, T, head_dim]`, or with `in_place`
            the updated caches in `cache_inputs` order.
        """
        del length
        _, heads, cache_length, head_dim = caches[0].shape
        tokens = token_ids.shape[1]
        positions = start + tf.range(tokens)
        x = backbone.token_embedding(token_ids)
        # expand_dims, not [tf.newaxis]: that is a STRIDED_SLICE.
        position_vectors = tf.expand_dims(tf.gather(backbone.position_embedding.position_embeddings, positions), 0)
        x = backbone.embeddings_add((x, position_vectors))
        scale = 1.0 / np.sqrt(head_dim)
        if in_place:
            visible = tf.range(cache_length)[tf.newaxis, :] <= positions[:, tf.newaxis]  # [T, C]
        else:
            written = tf.reshape(tf.range(cache_length) < start, [1, 1, cache_length])
            causal = tf.constant(np.tril(np.ones((1, tokens, tokens), bool)))

        def by_head(projection):  # [1, T, heads, head_dim] -> [heads, T, head_dim]
            # Reshapes, not projection[0] (a STRIDED_SLICE); with one token the
            # transpose moves nothing, so it is a reshape too.
            if tokens == 1:
                return tf.reshape(projection, [heads, 1, head_dim])
            return tf.transpose(tf.reshape(projection, [tokens, heads, head_dim]), [1, 0, 2])

        new = []
        for index, layer in enumerate(backbone.transformer_layers):
            attention = layer._self_attention_layer
            keys, values = caches[2 * index], caches[2 * index + 1]
            hidden = layer._self_attention_layer_norm(x)
            query = by_head(attention._query_dense(hidden))
            key = by_head(attention._key_dense(hidden))
            value = by_head(attention._value_dense(hidden))
            # Keras scales the query; scaling the scores is the same math, and
            # keeps the converter from folding the scale into a second copy of
            # the query weights.
            if in_place:
                keys = xla.dynamic_update_slice(keys, key[tf.newaxis], [0, 0, start, 0])
                values = xla.dynamic_update_slice(values, value[tf.newaxis], [0, 0, start, 0])
                new += [keys, values]
                keys = tf.reshape(keys, [heads, cache_length, head_dim])  # a reshape each, no copy
                scores = tf.where(visible, tf.matmul(query, keys, transpose_b=True) * scale, -1e9)
                mixed = tf.matmul(tf.nn.softmax(scores, axis=-1), tf.reshape(values, [heads, cache_length, head_dim]))
            else:
                keys = tf.reshape(keys, [heads, cache_length, head_dim])
                values = tf.reshape(values, [heads, cache_length, head_dim])
                cached_scores = tf.where(written, tf.matmul(query, keys, transpose_b=True) * scale, -1e9)
                own_scores = tf.where(causal, tf.matmul(query, key, transpose_b=True) * scale, -1e9)
                cached_weights, own_weights = tf.split(
                    tf.nn.softmax(tf.concat([cached_scores, own_scores], axis=-1)), [cache_length, tokens], axis=-1
                )
                mixed = tf.matmul(cached_weights, values) + tf.matmul(own_weights, value)  # [heads, T, head_dim]
                new.append(tf.stack([key, value]))
            mixed = tf.reshape(tf.transpose(mixed, [1, 0, 2]) if tokens > 1 else mixed, [1, tokens, heads, head_dim])
            x = x + attention._output_dense(mixed)
            hidden = layer._feedforward_layer_norm(x)
            x = x + layer._feedforward_output_dense(layer._feedforward_intermediate_dense(hidden))
        if not in_place:
            new = tf.reshape(tf.stack(new), [1, len(backbone.transformer_layers), 2, heads, tokens, head_dim])
        return backbone.layer_norm(x), new
