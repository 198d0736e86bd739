"""The LSTM language model's recipe (`zoo.models.lstm_lm.LSTMLMBackbone`): its recurrent state as the cache.

The cache is each layer's hidden and cell state, one `[1, hidden_dim]`
tensor each, `state_h_<i>` / `state_c_<i>` (`cache_inputs` order: layer 0's
h, its c, layer 1's h, ...). A step replaces the whole cache ("replace"):
the state has no positions, so `start` is not read. Each LSTM cell runs once
per token (`LSTMLMBackbone.call_with_state(unroll=True)`): a file of
matmuls and activations, no loop (a WHILE that reads variables does not run
in LiteRT).
"""

import tensorflow as tf

from zoo.export.architectures import Recipe, register_recipe
from zoo.export.errors import ExportError
from zoo.models.lstm_lm import LSTMLMBackbone


@register_recipe(LSTMLMBackbone)
class LSTMLMRecipe(Recipe):
    cache_update = "replace"

    def cache_inputs(self, backbone):
        return [[f"state_h_{layer}", f"state_c_{layer}"] for layer in range(backbone.num_layers)]

    def cache_shapes(self, backbone, cache_length):
        return [[1, backbone.hidden_dim]] * (2 * backbone.num_layers)


    def logits(self, backbone, hidden):
        return backbone.token_embedding(hidden, reverse=True)

    def step(self, backbone, token_ids, start, caches, length=None, in_place=False):
        """`T` tokens through the LSTMs from the state in `caches`.

        Args:
            token_ids: int32 `[1, T]`.
            start: unused (a recurrent state has no positions).
            caches: the states, in `cache_inputs` order.
            length: the real tokens among the `T` (a right-padded prompt
                chunk): the state returned is the one after them, the
                padding's steps leave it as it was.
        Returns:
            `hidden` `[1, T, hidden_dim]` and the new states in `cache_inputs` order.
        """
        del start
        if in_place:
            raise ExportError(f"{type(backbone).__name__}: a recurrent state is replaced, not written in place")
        states = tf.reshape(tf.stack(caches, axis=1), [1, backbone.num_layers, 2, backbone.hidden_dim])
        if length is None:
            hidden, states = backbone.call_with_state(token_ids, states, unroll=True)
        else:
            steps = []
            for index, token in enumerate(tf.split(token_ids, token_ids.shape[1], axis=1)):
                output, after = backbone.call_with_state(token, states, unroll=True)
                states = tf.where(index < length, after, states)
                steps.append(output)
            hidden = tf.concat(steps, axis=1)
        return hidden, tf.unstack(tf.reshape(states, [2 * backbone.num_layers, 1, backbone.hidden_dim]))
