"""A recurrent classifier as ONNX with ONNX's own LSTM / GRU / RNN operators: the strongest ONNX Runtime peer.

tf2onnx turns a Keras 3 recurrent layer into a generic `Loop` of small ops
(it recognises only the TF1/tf.keras loop patterns); an ONNX model written
by PyTorch uses the fused `LSTM`/`GRU`/`RNN` operators, which ONNX Runtime
runs with its own kernels. This module writes that graph from the Keras
weights themselves, so the peer is the same network, not a retrained one:

    token ids -> Gather(embedding) -> [LSTM|GRU|RNN](sequence_lens = text length) x layers
              -> max over the text's steps (or the last state) -> the classifier's head

The head (the output layer and the Naive Bayes branch) is converted by
tf2onnx from the same Keras layers and joined on. Keras masks padding (id 0,
always after the text): `sequence_lens` does the same in ONNX, and the max
pool keeps Keras's rule (a one-directional layer's padded steps repeat its
last output, so they never change the max; inside Bidirectional they are
zeros, and so they are in ONNX's output).
"""

import numpy as np

# Keras LSTM gate order i, f, c, o; ONNX's is i, o, f, c.
_LSTM_TO_ONNX = (0, 3, 1, 2)
_OPS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


def write(classifier, path, opset=17):
    """Write `classifier`'s token-id network to `path` with native recurrent ops.

    Raises:
        NotImplementedError: the backbone is not `zoo.models.recurrent.RecurrentBackbone`, or a layer uses
            non-default activations (ONNX's defaults are Keras's defaults).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from zoo.models.recurrent import RecurrentBackbone

    backbone = classifier.backbone
    if not isinstance(backbone, RecurrentBackbone):
        raise NotImplementedError(f"{classifier.name}: native ONNX recurrent ops need a recurrent backbone, "
                                  f"not {type(backbone).__name__}")
    head, names = _head_onnx(classifier, opset)
    graph = head.graph
    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    ids = names["token_ids"]
    embedding = keras_value(backbone.token_embedding.embeddings)
    nodes += [
        helper.make_node("Gather", [constant("rnn/embedding", embedding), ids], ["rnn/embedded"]),
        helper.make_node("Transpose", ["rnn/embedded"], ["rnn/x0"], perm=[1, 0, 2]),  # time-major
        helper.make_node("Equal", [ids, constant("rnn/pad_id", np.int32(0))], ["rnn/is_pad"]),
        helper.make_node("Not", ["rnn/is_pad"], ["rnn/is_text"]),
        helper.make_node("Cast", ["rnn/is_text"], ["rnn/is_text_int"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["rnn/is_text_int", constant("rnn/time_axis", np.int64([1]))],
                         ["rnn/lengths"], keepdims=0),
    ]
    x = "rnn/x0"
    directions = 2 if backbone.bidirectional else 1
    for index, layer in enumerate(backbone.recurrent_layers):
        cells = [layer.forward_layer, layer.backward_layer] if backbone.bidirectional else [layer]
        weights = [_onnx_weights(backbone.cell, cell) for cell in cells]
        w, r, b = (np.stack([weight[k] for weight in weights]) for k in range(3))
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
            helper.make_node("Reshape", [f"{prefix}/y_t", constant(f"{prefix}/shape", np.int64(
                [0, 0, directions * backbone.hidden_dim]))], [f"{prefix}/out"]),
        ]
        x = f"{prefix}/out"
    features = names["features"]
    if backbone.pooling == "max":
        if backbone.bidirectional:
            nodes.append(helper.make_node("ReduceMax", [x], [features], axes=[0], keepdims=0))
        else:
            nodes += [
                helper.make_node("Transpose", ["rnn/is_text"], ["rnn/is_text_t"], perm=[1, 0]),
                helper.make_node("Unsqueeze", ["rnn/is_text_t", constant("rnn/last_axis", np.int64([2]))],
                                 ["rnn/is_text_3d"]),
                helper.make_node("Where", ["rnn/is_text_3d", x, constant("rnn/lowest", np.float32(-np.inf))],
                                 ["rnn/text_steps"]),
                helper.make_node("ReduceMax", ["rnn/text_steps"], [features], axes=[0], keepdims=0),
            ]
    else:
        last = f"rnn/layer{len(backbone.recurrent_layers) - 1}/y_h"  # [directions, batch, units]
        nodes += [
            helper.make_node("Transpose", [last], ["rnn/last_t"], perm=[1, 0, 2]),
            helper.make_node("Reshape", ["rnn/last_t", constant("rnn/features_shape", np.int64(
                [0, directions * backbone.hidden_dim]))], [features]),
        ]
    kept_inputs = [value for value in graph.input if value.name != features]
    if ids not in {value.name for value in kept_inputs}:  # a head without the Naive Bayes branch
        kept_inputs.append(helper.make_tensor_value_info(ids, TensorProto.INT32, [None, classifier.sequence_length]))
    del graph.input[:]
    graph.input.extend(kept_inputs)
    head_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + head_nodes)
    graph.initializer.extend(initializers)
    onnx.checker.check_model(head)
    onnx.save(head, str(path))
    return path


def keras_value(variable):
    import keras

    return keras.ops.convert_to_numpy(variable).astype(np.float32)


def _onnx_weights(cell_name, layer):
    """`(W, R, B)` of one direction in ONNX's layout from a Keras recurrent layer."""
    cell = layer.cell
    kernel, recurrent = keras_value(cell.kernel), keras_value(cell.recurrent_kernel)
    units = recurrent.shape[0]
    expected = {"lstm": ("tanh", "sigmoid"), "gru": ("tanh", "sigmoid"), "simple_rnn": ("tanh", None)}[cell_name]
    actual = (cell.activation.__name__, getattr(getattr(cell, "recurrent_activation", None), "__name__", None))
    if actual != expected:
        raise NotImplementedError(f"{layer.name}: activations {actual}, ONNX's defaults are {expected}")
    bias = keras_value(cell.bias) if cell.use_bias else np.zeros([units * {"lstm": 4, "gru": 3}.get(cell_name, 1)],
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


def _head_onnx(classifier, opset):
    """`(model_proto, {"token_ids": name, "features": name})`: the classifier after its backbone, by tf2onnx."""
    import keras
    import tensorflow as tf
    import tf2onnx

    width = classifier.backbone.output.shape[-1]
    features = keras.Input((width,), name="features")
    token_ids = keras.Input((classifier.sequence_length,), dtype="int32", name="token_ids")
    outputs = classifier.output_dense(features)  # dropout is the identity at inference
    signature = [tf.TensorSpec([None, width], tf.float32, name="features")]
    inputs = [features]
    if classifier.naive_bayes is not None:
        outputs = classifier.output_activation(classifier.wide_and_deep([outputs, classifier.naive_bayes(token_ids)]))
        signature.append(tf.TensorSpec([None, classifier.sequence_length], tf.int32, name="token_ids"))
        inputs.append(token_ids)
    head = keras.Model(inputs, outputs, name=f"{classifier.name}_head")
    function = tf.function(lambda *args: head(list(args) if len(args) > 1 else args[0], training=False),
                           input_signature=signature)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    names = {"features": proto.graph.input[0].name,
             "token_ids": proto.graph.input[1].name if len(signature) > 1 else "token_ids"}
    return proto, names
