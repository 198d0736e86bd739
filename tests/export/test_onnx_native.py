"""The ONNX format writes recurrent backbones as ONNX's own LSTM / GRU / RNN ops, computing what Keras computes."""

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from tests import helpers
from zoo.export.formats import onnx as onnx_format
from zoo.export.tasks.text_classification import token_id_model

NATIVE_OPS = {"LSTM", "GRU", "RNN"}


def _ops(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _run(path, token_ids):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["token_ids"]  # a caller passes token ids only
    return session.run(None, {"token_ids": np.asarray(token_ids, np.int32)})[0]


def _randomized(model):
    for variable in model.backbone.weights:  # weights large enough that a wrong gate order shows
        variable.assign(keras.random.normal(variable.shape, seed=1))
    return model


# Short, full-window and empty texts: the padding mask matters for both poolings and directions.
TEXTS = [*helpers.TEXTS, "a", " ".join(["good"] * 40), ""]


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides", [
    ("lstm_classifier", {}), ("lstm_classifier", {"pooling": "last", "num_layers": 2}), ("gru_classifier", {}),
    ("simple_rnn_classifier", {}), ("bilstm_classifier", {}), ("bigru_classifier", {"pooling": "last"}),
    ("lstm_classifier", {"naive_bayes_buckets": 0}), ("lstm_multi_label_classifier", {}),
])
def test_recurrent_backbones_become_native_ops_with_keras_outputs(name, overrides, tmp_path):
    classes = ["drama", "comedy", "war"] if "multi_label" in name else ["negative", "positive"]
    model = _randomized(helpers.build_tiny(name, class_names=classes, **overrides))
    token_ids = model.preprocessor.reference().encode(TEXTS)
    expected = np.asarray(token_id_model(model)(token_ids))
    path = tmp_path / "model.onnx"
    onnx_format.write(model, path)
    assert NATIVE_OPS & _ops(path) and "Loop" not in _ops(path)
    assert expected[:, 0].std() > 0.01
    np.testing.assert_allclose(_run(path, token_ids), expected, atol=1e-5)
    # The dynamic int8 file is quantized from the native-op graph and stays close.
    quantized = tmp_path / "model.dynamic_int8.onnx"
    onnx_format.write(model, quantized, "dynamic_int8")
    np.testing.assert_allclose(_run(quantized, token_ids), expected, atol=0.05)


def test_the_exported_gru_file_is_native_and_runs_through_zoo_runtime(gru_export, tiny_gru):
    import zoo.runtime

    path = gru_export / "onnx" / "model.onnx"
    assert "GRU" in _ops(path) and "Loop" not in _ops(path)
    probabilities = zoo.runtime.load(path).predict(helpers.TEXTS)
    np.testing.assert_allclose(probabilities, tiny_gru.predict(helpers.TEXTS, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_other_backbones_and_other_activations_go_through_tf2onnx(tmp_path):
    cnn = helpers.build_tiny("cnn_classifier")
    onnx_format.write(cnn, tmp_path / "cnn.onnx")
    assert not NATIVE_OPS & _ops(tmp_path / "cnn.onnx")
    # A cell with an activation ONNX's op does not take is converted by tf2onnx, not written wrong.
    relu = _randomized(helpers.build_tiny("simple_rnn_classifier", class_names=["negative", "positive"]))
    for layer in relu.backbone.recurrent_layers:
        layer.cell.activation = keras.activations.relu
    token_ids = relu.preprocessor.reference().encode(TEXTS)
    onnx_format.write(relu, tmp_path / "relu.onnx")
    assert not NATIVE_OPS & _ops(tmp_path / "relu.onnx")
    np.testing.assert_allclose(_run(tmp_path / "relu.onnx", token_ids), np.asarray(token_id_model(relu)(token_ids)),
                               atol=1e-5)
