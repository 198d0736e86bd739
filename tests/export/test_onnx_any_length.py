"""The exported ONNX classifier takes token ids padded to any length up to the window, with Keras's outputs."""

import keras
import numpy as np
import onnxruntime
import pytest

from tests import helpers
from zoo.export.formats import onnx as onnx_format
from zoo.export.tasks.text_classification import token_id_model

# Mixed lengths: empty, one word, typical, and longer than the window (so one row fills it).
TEXTS = [*helpers.TEXTS, *helpers.UNSEEN, "a", "good fun", " ".join(["good"] * 40)]


def _session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _probabilities(session, token_ids):
    return session.run(None, {"token_ids": np.asarray(token_ids, np.int32)})[0]


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides", [
    ("lstm_classifier", {}), ("lstm_classifier", {"pooling": "last", "num_layers": 2}), ("gru_classifier", {}),
    ("simple_rnn_classifier", {}), ("bilstm_classifier", {}), ("bigru_classifier", {"pooling": "last"}),
    ("cnn_classifier", {}), ("transformer_classifier", {}), ("lstm_multi_label_classifier", {}),
])
def test_ids_padded_to_the_longest_text_give_the_window_padded_outputs(name, overrides, tmp_path):
    classes = ["drama", "comedy", "war"] if "multi_label" in name else ["negative", "positive"]
    model = helpers.build_tiny(name, class_names=classes, **overrides)
    for variable in model.backbone.weights:  # large weights, so a padding step that leaks into the pool shows
        variable.assign(keras.random.normal(variable.shape, seed=1))
    window_ids = model.preprocessor.reference().encode(TEXTS)
    expected = np.asarray(token_id_model(model)(window_ids))
    path = tmp_path / "model.onnx"
    onnx_format.write(model, path)
    session = _session(path)
    assert session.get_inputs()[0].shape[1] != model.sequence_length  # the time dimension is dynamic
    np.testing.assert_allclose(_probabilities(session, window_ids), expected, atol=1e-5)
    lengths = (window_ids != 0).sum(axis=1)
    # Short texts together, padded to the longest of them (shorter than the window) ...
    short = np.flatnonzero(lengths < model.sequence_length)
    longest = max(1, lengths[short].max())
    assert longest < model.sequence_length
    np.testing.assert_allclose(_probabilities(session, window_ids[short, :longest]), expected[short], atol=1e-5)
    # ... and each text alone, with no padding at all (an empty text keeps one pad id).
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(_probabilities(session, window_ids[row : row + 1, : max(1, length)]),
                                   expected[row : row + 1], atol=1e-5, err_msg=repr(TEXTS[row]))


@pytest.mark.slow
def test_a_file_that_differs_when_padded_to_the_longest_text_fails_the_export(tiny_gru, tmp_path, monkeypatch):
    from zoo.export import ExportError, export, isolation
    from zoo.runtime.text_classifier import PADDED_TO_LONGEST

    real_run = isolation.run_in_child

    def off_when_trimmed(*args):
        outputs = real_run(*args)
        assert PADDED_TO_LONGEST in outputs["cpu"]  # the export runs the file as `predict` does, too
        outputs["cpu"][PADDED_TO_LONGEST] = outputs["cpu"][PADDED_TO_LONGEST] + 1e-3
        return outputs

    monkeypatch.setattr(isolation, "run_in_child", off_when_trimmed)
    with pytest.raises(ExportError, match=r"onnx float32 \(cpu\), each batch padded to its longest text: .*exceeds"):
        export(tiny_gru, root=tmp_path, formats=("onnx",), variants=(), validation_data=(helpers.TEXTS, helpers.LABELS))
