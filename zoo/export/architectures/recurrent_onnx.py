"""The recurrent backbones as ONNX's own LSTM / GRU / RNN operators, which stop at each text's end.

tf2onnx lowers a Keras 3 recurrent layer to a generic `Loop` of small ops
over the whole window (it recognises only the TF1/tf.keras loop patterns).
ONNX has fused `LSTM`/`GRU`/`RNN` operators that take each text's length
(`sequence_lens`), so ONNX Runtime runs one kernel per layer and only the
text's steps. This module writes the backbone that way from the Keras
weights; the ONNX format joins the result to the rest of the task's graph:

    token_ids -> Gather(embedding) -> [LSTM|GRU|RNN](sequence_lens = text length) x layers
              -> max over the text's steps, or the last state -> features

Keras masks padding (id 0, always after the text); `sequence_lens` does the
same. The max pool keeps Keras's rule: a one-directional layer's padded
steps repeat its last output, so they never change the max; inside
Bidirectional they are zeros, so Keras's max over the window takes a 0 into
every feature of a text shorter than the window. The token ids may come
padded to any length up to the window (a caller pads a batch only to its
longest text): that zero is then added whenever the text is shorter than
the window, not read off padded steps, so the features do not depend on how
much padding follows. An empty text gives zero features, as in Keras.
"""

import dataclasses

import keras
import numpy as np

from zoo import extras

# Keras LSTM gate order i, f, c, o; ONNX's is i, o, f, c.
_LSTM_TO_ONNX = (0, 3, 1, 2)
_OPS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
# ONNX's default activations; a layer with others has no native op.
_ACTIVATIONS = {"lstm": ("tanh", "sigmoid"), "gru": ("tanh", "sigmoid"), "simple_rnn": ("tanh", None)}


@dataclasses.dataclass
class OnnxFragment:
    """ONNX nodes (and their constant tensors) computing `features` from `token_ids`."""

    nodes: list
    initializers: list


def native_cells(backbone):
    """Whether every recurrent layer of `backbone` has ONNX's default activations (so a native op)."""
    for layer in backbone.recurrent_layers:
        for direction in (layer.forward_layer, layer.backward_layer) if backbone.bidirectional else (layer,):
            cell = direction.cell
            actual = (cell.activation.__name__,
                      getattr(getattr(cell, "recurrent_activation", None), "__name__", None))
            if actual != _ACTIVATIONS[backbone.cell]:
                return False
    return True


def backbone_fragment(backbone, token_ids, features, window):
    """`OnnxFragment` of `backbone`: int32 `token_ids` `[batch, length <= window]` -> float32 `features`
    `[batch, width]`, what Keras gives for the same ids padded to `window`."""
    extras.require("onnx", "the onnx format")
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    embedding = _value(backbone.token_embedding.embeddings)
    nodes += [
        helper.make_node("Gather", [constant("rnn/embedding", embedding), token_ids], ["rnn/embedded"]),
        helper.make_node("Transpose", ["rnn/embedded"], ["rnn/x0"], perm=[1, 0, 2]),  # time-major
        helper.make_node("Equal", [token_ids, constant("rnn/pad_id", np.int32(0))], ["rnn/is_pad"]),
        helper.make_node("Not", ["rnn/is_pad"], ["rnn/is_text"]),
        helper.make_node("Cast", ["rnn/is_text"], ["rnn/is_text_int"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["rnn/is_text_int", constant("rnn/time_axis", np.int64([1]))],
                         ["rnn/lengths"], keepdims=0),
    ]
    x = "rnn/x0"
    directions = 2 if backbone.bidirectional else 1
    width = directions * backbone.hidden_dim
    for index, layer in enumerate(backbone.recurrent_layers):
        cells = [layer.forward_layer, layer.backward_layer] if backbone.bidirectional else [layer]
        w, r, b = (np.stack(parts) for parts in zip(*[_onnx_weights(backbone.cell, cell) for cell in cells]))
        prefix = f"rnn/layer{index}"
        attributes = {"hidden_size": backbone.hidden_dim,
                      "direction": "bidirectional" if backbone.bidirectional else "forward"}
        if backbone.cell == "gru":
            attributes["linear_before_reset"] = int(cells[0].cell.reset_after)
        outputs = [f"{prefix}/y", f"{prefix}/y_h"] + ([f"{prefix}/y_c"] if backbone.cell == "lstm" else [])
        nodes.append(helper.make_node(
            _OPS[backbone.cell],
            [x, constant(f"{prefix}/w", w), constant(f"{prefix}/r", r), constant(f"{prefix}/b", b), "rnn/lengths"],
            outputs, **attributes))
        # [time, directions, batch, units] -> [time, batch, directions * units]: Bidirectional's concat order.
        nodes += [
            helper.make_node("Transpose", [f"{prefix}/y"], [f"{prefix}/y_t"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{prefix}/y_t", constant(f"{prefix}/shape", np.int64([0, 0, width]))],
                             [f"{prefix}/out"]),
        ]
        x = f"{prefix}/out"
    if backbone.pooling == "max":
        if backbone.bidirectional:
            nodes += [
                helper.make_node("ReduceMax", [x], ["rnn/steps_max"], axes=[0], keepdims=0),
                helper.make_node("Less", ["rnn/lengths", constant("rnn/window", np.int32(window))], ["rnn/padded"]),
                helper.make_node("Unsqueeze", ["rnn/padded", constant("rnn/padded_axis", np.int64([1]))],
                                 ["rnn/padded_2d"]),
                helper.make_node("Max", ["rnn/steps_max", constant("rnn/padding_output", np.float32(0))],
                                 ["rnn/with_padding"]),
                helper.make_node("Where", ["rnn/padded_2d", "rnn/with_padding", "rnn/steps_max"], ["rnn/pooled"]),
            ]
        else:
            nodes += [
                helper.make_node("Transpose", ["rnn/is_text"], ["rnn/is_text_t"], perm=[1, 0]),
                helper.make_node("Unsqueeze", ["rnn/is_text_t", constant("rnn/last_axis", np.int64([2]))],
                                 ["rnn/is_text_3d"]),
                helper.make_node("Where", ["rnn/is_text_3d", x, constant("rnn/lowest", np.float32(-np.inf))],
                                 ["rnn/text_steps"]),
                helper.make_node("ReduceMax", ["rnn/text_steps"], ["rnn/pooled"], axes=[0], keepdims=0),
            ]
    else:
        last = f"rnn/layer{len(backbone.recurrent_layers) - 1}/y_h"  # [directions, batch, units]
        nodes += [
            helper.make_node("Transpose", [last], ["rnn/last_t"], perm=[1, 0, 2]),
            helper.make_node("Reshape", ["rnn/last_t", constant("rnn/features_shape", np.int64([0, width]))],
                             ["rnn/pooled"]),
        ]
    # An empty text (all padding) has no steps: Keras gives it zero features.
    nodes += [
        helper.make_node("Greater", ["rnn/lengths", constant("rnn/zero_length", np.int32(0))], ["rnn/has_text"]),
        helper.make_node("Unsqueeze", ["rnn/has_text", constant("rnn/feature_axis", np.int64([1]))],
                         ["rnn/has_text_2d"]),
        helper.make_node("Where", ["rnn/has_text_2d", "rnn/pooled", constant("rnn/zero", np.float32(0))],
                         [features]),
    ]
    return OnnxFragment(nodes, initializers)


def _value(variable):
    return keras.ops.convert_to_numpy(variable).astype(np.float32)


def _onnx_weights(cell_name, layer):
    """`(W, R, B)` of one direction in ONNX's layout from a Keras recurrent layer."""
    cell = layer.cell
    kernel, recurrent = _value(cell.kernel), _value(cell.recurrent_kernel)
    units = recurrent.shape[0]
    bias = _value(cell.bias) if cell.use_bias else np.zeros([units * {"lstm": 4, "gru": 3}.get(cell_name, 1)],
                                                             np.float32)
    if cell_name == "lstm":
        def reorder(matrix):
            blocks = np.split(matrix, 4, axis=-1)
            return np.concatenate([blocks[i] for i in _LSTM_TO_ONNX], axis=-1)

        return reorder(kernel).T, reorder(recurrent).T, np.concatenate([reorder(bias), np.zeros_like(bias)])
    if cell_name == "gru":  # z, r, h in both; reset_after keeps separate input and recurrent biases
        biases = bias if bias.ndim == 2 else np.stack([bias, np.zeros_like(bias)])
        return kernel.T, recurrent.T, biases.reshape(-1)
    return kernel.T, recurrent.T, np.concatenate([bias, np.zeros_like(bias)])
