"""Fused LSTM LiteRT files (zoo.export.architectures.recurrent): UNIDIRECTIONAL_SEQUENCE_LSTM
instead of a WHILE loop, exact on every call of one interpreter (the fused op
keeps state between invokes; the leading reset step must clear it)."""

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from zoo.export.architectures import recurrent
from zoo.export.formats import litert
from zoo.export.graphs import RuntimeTarget
from zoo.export.tasks import task_for

FUSED = RuntimeTarget(batch_size=1, sequence_ops=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm_classifier", "bilstm_classifier"])
def test_fused_lstm_matches_keras_on_repeated_calls(name, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    model = helpers.build_tiny(name, class_names=["negative", "positive"])
    model.adapt(helpers.TEXTS, helpers.LABELS)
    model.fit(helpers.TEXTS, helpers.LABELS, epochs=3, batch_size=8, verbose=0)
    assert recurrent.can_fuse(model.backbone)
    graph = task_for(model).runtime_graph(model, FUSED, {})
    assert graph.fused
    flatbuffer = litert.convert(graph.write_saved_model(tmp_path / "fused"))
    ops = litert.op_names(flatbuffer)
    # The converter's fusion pass is internal to TF: catch an upgrade that drops it.
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops, ops
    assert all(op.isupper() for op in ops)

    texts = helpers.TEXTS[:6] + helpers.UNSEEN + helpers.TEXTS[:1]
    expected = np.asarray(model.predict(tf.constant(texts), verbose=0))
    runner = Interpreter(model_content=flatbuffer, num_threads=2).get_signature_runner("serving_default")
    token_ids = model.preprocessor.reference().encode(texts)
    got = np.concatenate([runner(token_ids=row[np.newaxis])["probabilities"] for row in token_ids])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The first text again, after ten other calls on the same interpreter: same answer.
    np.testing.assert_array_equal(got[-1], got[0])


def test_only_lstms_fuse():
    for name in ("gru_classifier", "transformer_classifier", "cnn_classifier"):
        model = helpers.build_tiny(name)
        assert not task_for(model).runtime_graph(model, FUSED, {}).fused, name
    assert not recurrent.can_fuse(helpers.build_tiny("gru_classifier").backbone)
