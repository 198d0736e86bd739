"""The recurrent backbones' recipe: loops unrolled, or LSTMs as TFLite's fused sequence op.

`RecurrentRecipe.features` traces `zoo.models.recurrent.RecurrentBackbone`
for a runtime file in one of three ways:
- fused (`target.sequence_ops`, every layer an LSTM): TFLite's
  UNIDIRECTIONAL_SEQUENCE_LSTM, built as below;
- unrolled (`target.unroll`): the Keras layers traced step by step over the
  fixed window (TFLite has no fused GRU and its converter emits no fused
  SimpleRNN; the alternative, a WHILE loop, is slower, and full-int8
  calibration needs unrolled ops: TFLite's calibrator segfaults logging
  WHILE outputs, tensorflow#75140);
- else the Keras layers as they are (a generic loop).

Keras 3 LSTM/GRU/SimpleRNN layers trace to a generic loop that the converter
lowers to a builtin WHILE. TFLite has fused builtins for LSTM
(UNIDIRECTIONAL_SEQUENCE_LSTM), and its converter produces them from one
pattern only: a function carrying the attribute
`api_implements="lstm_<unique>"` with tf.keras's `standard_lstm` signature
(inputs, init_h, init_c, kernel, recurrent_kernel, bias) -> (last_output,
outputs, h, c, runtime), batch-major (`time_major=False`,
`go_backwards=False` attributes). The converter's prepare-composite-functions
pass replaces that function's body with the fused op, so the body only has to
be a correct LSTM for TF itself.

The fused op has no mask input, so the conversion function rebuilds the
masked semantics around it instead of calling the Keras recurrent layers:

* forward direction: run over all `sequence_length` steps. Padding (id 0)
  is only ever on the right, so outputs at text steps are the masked
  layer's; the masked steps are then set to what Keras gives them: zeros
  when the layer has `zero_output_for_mask` (always inside Bidirectional),
  else the last text step's output (0 for an empty text).
* backward direction: REVERSE_SEQUENCE on the text lengths before and after
  the forward op (the reversed text stays at the front, padding after).

The fused op is stateful in TFLite: its initial h and c must be constant
zeros, which the converter turns into *variable* tensors, and the kernel
leaves the final state in them, so the next `invoke()` starts where the last
one ended (measured: exact on the first call, max |dh| 0.6 on the second).
Callers cannot be asked to `reset_all_variables()` (LiteRT's signature
runners fail on it, and Android/iOS apps would not know to), so the sequence
gets one extra leading "reset" step: an extra input feature, 1 at that step
and 0 elsewhere, whose kernel row is -RESET_BIAS for the input and forget
gates. sigmoid(-3e4) is exactly 0 in float32, so after the step c = 0*c +
0*g = 0 and h = o*tanh(0) = 0: every call starts from the zero state. At
text steps the feature is 0 and adds exactly -0.0 to the gate sums. 3e4 stays
finite in float16 (0 * -inf would be NaN); int8 weight quantization of this
kernel would however be ruined by the outlier row.

Everything else (embedding, pooling) calls the trained Keras 3 layers, so
only the recurrence is rewritten.
"""

import contextlib
import uuid

import keras
import tensorflow as tf

from zoo.export.architectures import Recipe, recurrent_onnx, register_recipe
from zoo.export.errors import ExportError
from zoo.models.recurrent import RecurrentBackbone

# Cells with a fused TFLite builtin the converter can produce.
FUSABLE_CELLS = (keras.layers.LSTM,)
# Pre-activation of the input and forget gates at the reset step.
RESET_BIAS = 3.0e4


def _lstm_body(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    # What TF runs; the converter swaps the whole function for the fused op.
    steps = tf.transpose(inputs, [1, 0, 2])

    def step(state, x):
        h, c = state
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)
        h = tf.sigmoid(z_o) * tf.tanh(c)
        return h, c

    hs, cs = tf.scan(step, steps, initializer=(init_h, init_c))
    outputs = tf.transpose(hs, [1, 0, 2])
    # The fifth result mirrors tf.keras's `runtime` (1.0 = CPU); unused.
    return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(1.0, tf.float32)


def _composite_lstm():
    # A fresh name per call site: the converter pairs functions by this name.
    return tf.function(
        _lstm_body,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
    )


def check_fusable(layer):
    """Raise ExportError unless `layer` (a Keras 3 LSTM) maps onto the fused op."""
    if not isinstance(layer, FUSABLE_CELLS):
        raise ExportError(f"{layer.name}: no fused TFLite op for {type(layer).__name__}")
    cell = layer.cell
    if keras.activations.serialize(cell.activation) != "tanh" or keras.activations.serialize(
        cell.recurrent_activation
    ) != "sigmoid":
        raise ExportError(f"{layer.name}: the fused LSTM needs tanh/sigmoid activations")
    if layer.stateful or layer.return_state or layer.unroll:
        raise ExportError(f"{layer.name}: stateful, return_state or unroll LSTMs are not fused")


def _lstm_weights(layer):
    cell = layer.cell
    bias = cell.bias if cell.use_bias else tf.zeros([4 * cell.units], cell.kernel.dtype)
    return tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel), tf.convert_to_tensor(bias)


def _with_reset_step(inputs, kernel):
    """Prepend the state-reset step (see the module docstring)."""
    batch, _, features = inputs.shape
    units = kernel.shape[1] // 4
    flag = tf.one_hot(features, features + 1, dtype=inputs.dtype)  # [features + 1]
    first = tf.tile(flag[tf.newaxis, tf.newaxis], [batch, 1, 1])
    rest = tf.pad(inputs, [[0, 0], [0, 0], [0, 1]])
    reset_row = tf.concat(
        [tf.fill([2 * units], -RESET_BIAS), tf.zeros([2 * units])], axis=0
    )  # gate order i, f, g, o
    return tf.concat([first, rest], axis=1), tf.concat([kernel, reset_row[tf.newaxis]], axis=0)


def _run_direction(layer, inputs, mask, lengths, zero_output_for_mask):
    """Keras's masked `return_sequences=True` outputs of one direction."""
    check_fusable(layer)
    if layer.go_backwards:
        inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    batch = inputs.shape[0]
    if batch is None:
        raise ExportError("the fused LSTM needs a static batch size")
    init = tf.zeros([batch, layer.cell.units], inputs.dtype)
    kernel, recurrent_kernel, bias = _lstm_weights(layer)
    inputs, kernel = _with_reset_step(inputs, kernel)
    _, outputs, _, _, _ = _composite_lstm()(inputs, init, init, kernel, recurrent_kernel, bias)
    outputs = outputs[:, 1:]
    if layer.go_backwards:
        outputs = tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0)
    keep = mask[:, :, tf.newaxis]
    if zero_output_for_mask:
        return tf.where(keep, outputs, tf.zeros_like(outputs))
    if layer.go_backwards:
        raise ExportError(f"{layer.name}: go_backwards without zero_output_for_mask is not supported")
    last = tf.gather(outputs, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    last = tf.where((lengths > 0)[:, tf.newaxis], last, tf.zeros_like(last))
    return tf.where(keep, outputs, last[:, tf.newaxis, :])


def _last_step(layer, sequence, lengths):
    """Keras's masked `return_sequences=False` output from the full sequence."""
    if layer.go_backwards:
        # The backward pass ends at the first text step.
        return sequence[:, 0]
    last = tf.gather(sequence, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    return tf.where((lengths > 0)[:, tf.newaxis], last, tf.zeros_like(last))


def fused_recurrent(layer, inputs, mask, lengths):
    """One (maybe Bidirectional) recurrent layer of the backbone, fused."""
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


def fused_features(backbone, token_ids):
    """The backbone's inference on int32 token ids `[batch, length]` (static batch), LSTMs fused."""
    mask = tf.not_equal(token_ids, 0)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    x = backbone.token_embedding(token_ids)
    for layer in backbone.recurrent_layers:
        x = fused_recurrent(layer, x, mask, lengths)
    # The pool takes every step: the masked ones hold what Keras gives them (see `_run_direction`).
    return backbone.pooler(x) if backbone.pooler is not None else x


def can_fuse(backbone):
    """Whether every recurrent layer of `backbone` has a fused TFLite op."""
    for layer in backbone.recurrent_layers:
        directions = (
            (layer.forward_layer, layer.backward_layer) if isinstance(layer, keras.layers.Bidirectional) else (layer,)
        )
        for direction in directions:
            try:
                check_fusable(direction)
            except ExportError:
                return False
    return True


@contextlib.contextmanager
def unrolled(backbone):
    """Trace every recurrent layer of `backbone` as unrolled steps."""
    recurrent = [layer for layer in backbone._flatten_layers() if isinstance(layer, keras.layers.RNN)]
    saved = [(layer.unroll, layer.zero_output_for_mask) for layer in recurrent]
    try:
        for layer in recurrent:
            layer.unroll = True
            if layer.go_backwards:
                # Keras 3.15's unrolled rnn() zeroes masked outputs with the
                # mask in input order while the outputs are in (reversed)
                # processing order, so a Bidirectional layer's backward half
                # zeroes real steps and keeps padded ones (max |diff| 0.02).
                # zoo pads at the end, so a backward pass meets the padding
                # first and, without the zeroing, outputs the zeros it starts
                # from there: exactly what the WHILE loop gives.
                layer.zero_output_for_mask = False
        yield
    finally:
        for layer, (unroll, zero_output_for_mask) in zip(recurrent, saved):
            layer.unroll = unroll
            layer.zero_output_for_mask = zero_output_for_mask


@register_recipe(RecurrentBackbone)
class RecurrentRecipe(Recipe):
    def fuses(self, backbone, target):
        return target.sequence_ops and can_fuse(backbone)

    def features(self, backbone, token_ids, target):
        if self.fuses(backbone, target):
            return fused_features(backbone, token_ids)
        # Inside the traced function, so every trace of it (the converter's too) sees the unrolled layers.
        with unrolled(backbone) if target.unroll else contextlib.nullcontext():
            return backbone(token_ids, training=False)

    def onnx_backbone(self, backbone, token_ids, features, window):
        # ONNX's fused ops take only their default activations.
        if not recurrent_onnx.native_cells(backbone):
            return None
        return recurrent_onnx.backbone_fragment(backbone, token_ids, features, window)
