"""The recurrent backbones' recipe: each recurrent layer as unrolled steps with its input projection hoisted.

`RecurrentRecipe.features` traces `zoo.models.recurrent.RecurrentBackbone`
for a runtime file (`target.unroll`) as written here, or else as the Keras
layers are (a generic loop, which the LiteRT converter lowers to a WHILE).

Hoisted: for each direction of each layer, the input half of every step's
gate pre-activations is one matmul over the whole window (`x @ W + b`, one
FULLY_CONNECTED that XNNPACK runs at matmul speed); the loop, unrolled over
the fixed window, then does only `h @ U` and the gate arithmetic per step.
LSTM, GRU (Keras's default `reset_after=True` form) and SimpleRNN, any activations.
Against the two other loop styles on the default lstm_classifier phone file
(batch 1, rt-polarity texts, rounds against ONNX Runtime): TFLite's fused
UNIDIRECTIONAL_SEQUENCE_LSTM (which XNNPACK does not take, and which keeps
its state between invokes) took 1.8x as long, the Keras layers unrolled
(one small input matmul per step) 3.5x. Unrolled ops also quantize to full
int8, which a WHILE does not (TFLite's calibrator segfaults logging WHILE
outputs, tensorflow#75140).

Masking is rebuilt around the recurrence instead of being run inside it:
padding (id 0) is only ever on the right, so

* forward direction: the outputs at text steps are the masked layer's; the
  masked steps are then set to what Keras gives them: zeros when the layer
  has `zero_output_for_mask` (always inside Bidirectional), else the last
  text step's output (0 for an empty text);
* backward direction: each text reversed in place before and after the loop
  (the reversed text stays at the front, padding after).

Everything else (embedding, pooling) calls the trained Keras 3 layers, so
only the recurrence is rewritten.
"""

import keras
import tensorflow as tf

from zoo.export.architectures import Recipe, recurrent_onnx, register_recipe
from zoo.export.errors import ExportError
from zoo.models.recurrent import RecurrentBackbone


def _lstm_step(cell, x, state, recurrent_kernel):
    """One LSTM step from the hoisted `x @ W + b` (gate order i, f, g, o): (output, new state)."""
    h, c = state
    z_i, z_f, z_g, z_o = tf.split(x + tf.matmul(h, recurrent_kernel), 4, axis=1)
    c = cell.recurrent_activation(z_f) * c + cell.recurrent_activation(z_i) * cell.activation(z_g)
    h = cell.recurrent_activation(z_o) * cell.activation(c)
    return h, (h, c)


def _gru_step(cell, x, state, recurrent_kernel):
    """One GRU step from the hoisted `x @ W + input bias` (gate order z, r, h; Keras's `reset_after` form)."""
    (h,) = state
    recurrent = tf.matmul(h, recurrent_kernel)
    if cell.use_bias:
        recurrent += cell.bias[1]
    x_z, x_r, x_h = tf.split(x, 3, axis=1)
    r_z, r_r, r_h = tf.split(recurrent, 3, axis=1)
    z = cell.recurrent_activation(x_z + r_z)
    r = cell.recurrent_activation(x_r + r_r)
    h = z * h + (1.0 - z) * cell.activation(x_h + r * r_h)
    return h, (h,)


def _simple_rnn_step(cell, x, state, recurrent_kernel):
    (h,) = state
    h = cell.activation(x + tf.matmul(h, recurrent_kernel))
    return h, (h,)


# Cell type -> (its step over the hoisted input projection, how many state tensors it carries).
_STEPS = {keras.layers.LSTMCell: (_lstm_step, 2), keras.layers.GRUCell: (_gru_step, 1),
          keras.layers.SimpleRNNCell: (_simple_rnn_step, 1)}


def _unrolled_steps(cell, projected, batch):
    """Outputs `[batch, steps, units]` of `cell` over the hoisted projection, from the zero state."""
    step, state_count = _STEPS[type(cell)]
    state = (tf.zeros([batch, cell.units], projected.dtype),) * state_count
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    outputs = []
    for t in range(projected.shape[1]):
        output, state = step(cell, projected[:, t], state, recurrent_kernel)
        outputs.append(output)
    return tf.stack(outputs, axis=1)


def _input_projection(cell, inputs):
    """`x @ W + b` for every step at once: `[batch, steps, gates * units]`."""
    projected = tf.matmul(inputs, tf.convert_to_tensor(cell.kernel))
    if cell.use_bias:
        # A GRU's bias is [input bias, recurrent bias]; the recurrent half is added per step.
        bias = cell.bias[0] if isinstance(cell, keras.layers.GRUCell) else cell.bias
        projected += bias
    return projected


def _reverse_text(sequence, lengths):
    """Each row's first `length` steps reversed, the padding after them left in place (REVERSE_SEQUENCE
    as a GATHER, which has int8 kernels; REVERSE_SEQUENCE has none)."""
    positions = tf.range(sequence.shape[1])[tf.newaxis, :]
    lengths = lengths[:, tf.newaxis]
    order = tf.where(positions < lengths, lengths - 1 - positions, positions)
    return tf.gather(sequence, order, axis=1, batch_dims=1)


def _run_direction(layer, inputs, mask, lengths, zero_output_for_mask):
    """Keras's masked `return_sequences=True` outputs of one direction."""
    if type(layer.cell) not in _STEPS:
        raise ExportError(f"{layer.name}: no unrolled recipe for {type(layer.cell).__name__}")
    if layer.stateful or layer.return_state:
        raise ExportError(f"{layer.name}: stateful or return_state recurrent layers are not exported")
    if isinstance(layer.cell, keras.layers.GRUCell) and not layer.cell.reset_after:
        raise ExportError(f"{layer.name}: only GRUs with reset_after=True (Keras's default) are unrolled")
    batch, length = inputs.shape[0], inputs.shape[1]
    if length is None:
        raise ExportError(f"{layer.name}: an unrolled recurrence needs a static window")
    if layer.go_backwards:
        inputs = _reverse_text(inputs, lengths)
    outputs = _unrolled_steps(layer.cell, _input_projection(layer.cell, inputs),
                              batch if batch is not None else tf.shape(inputs)[0])
    if layer.go_backwards:
        outputs = _reverse_text(outputs, lengths)
    keep = mask[:, :, tf.newaxis]
    if zero_output_for_mask:
        return tf.where(keep, outputs, tf.zeros_like(outputs))
    if layer.go_backwards:
        raise ExportError(f"{layer.name}: go_backwards without zero_output_for_mask is not supported")
    return tf.where(keep, outputs, _at_last_text_step(outputs, lengths)[:, tf.newaxis, :])


def _at_last_text_step(sequence, lengths):
    """Each row's output at its last text step, zeros for an empty text."""
    last = tf.gather(sequence, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    return tf.where((lengths > 0)[:, tf.newaxis], last, tf.zeros_like(last))


def _last_step(layer, sequence, lengths):
    """Keras's masked `return_sequences=False` output from the full sequence."""
    if layer.go_backwards:
        # The backward pass ends at the first text step.
        return sequence[:, 0]
    return _at_last_text_step(sequence, lengths)


def unrolled_recurrent(layer, inputs, mask, lengths):
    """One (maybe Bidirectional) recurrent layer of the backbone, unrolled with its input projection hoisted."""
    if isinstance(layer, keras.layers.Bidirectional):
        if layer.merge_mode != "concat":
            raise ExportError(f"{layer.name}: only merge_mode='concat' is supported")
        parts = []
        for direction in (layer.forward_layer, layer.backward_layer):
            sequence = _run_direction(direction, inputs, mask, lengths, direction.zero_output_for_mask)
            parts.append(sequence if direction.return_sequences else _last_step(direction, sequence, lengths))
        return tf.concat(parts, axis=-1)
    sequence = _run_direction(layer, inputs, mask, lengths, layer.zero_output_for_mask)
    return sequence if layer.return_sequences else _last_step(layer, sequence, lengths)


def unrolled_features(backbone, token_ids):
    """The backbone's inference on int32 token ids `[batch, window]` (static window), loops unrolled."""
    mask = tf.not_equal(token_ids, 0)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    x = backbone.token_embedding(token_ids)
    for layer in backbone.recurrent_layers:
        x = unrolled_recurrent(layer, x, mask, lengths)
    # The pool takes every step: the masked ones hold what Keras gives them (see `_run_direction`).
    return backbone.pooler(x) if backbone.pooler is not None else x


@register_recipe(RecurrentBackbone)
class RecurrentRecipe(Recipe):
    def features(self, backbone, token_ids, target):
        if target.unroll:
            return unrolled_features(backbone, token_ids)
        return backbone(token_ids, training=False)

    def onnx_backbone(self, backbone, token_ids, features, window):
        # ONNX's fused ops take only their default activations.
        if not recurrent_onnx.native_cells(backbone):
            return None
        return recurrent_onnx.backbone_fragment(backbone, token_ids, features, window)
