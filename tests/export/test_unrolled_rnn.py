"""Recurrent LiteRT files (zoo.export.architectures.recurrent): every layer unrolled over the window with
its input projection hoisted into one matmul; builtin ops, no WHILE, equal to Keras on every call."""

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from zoo.export.formats import litert
from zoo.export.graphs import RuntimeTarget
from zoo.export.tasks import task_for

PHONE = RuntimeTarget(batch_size=1, unroll=True)


@pytest.mark.slow
@pytest.mark.parametrize("name, options", [
    ("lstm_classifier", {}), ("bilstm_classifier", {}), ("gru_classifier", {}), ("bigru_classifier", {}),
    ("simple_rnn_classifier", {}),
    # A stacked pair whose first layer returns sequences, and max pooling over every (masked) step.
    ("lstm_classifier", {"num_layers": 2}), ("bigru_classifier", {"pooling": "max"}),
])
def test_unrolled_recurrence_matches_keras_on_repeated_calls(name, options, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    model = helpers.build_tiny(name, class_names=["negative", "positive"], **options)
    model.adapt(helpers.TEXTS, helpers.LABELS)
    model.fit(helpers.TEXTS, helpers.LABELS, epochs=3, batch_size=8, verbose=0)
    graph = task_for(model).runtime_graph(model, PHONE, {})
    flatbuffer = litert.convert(graph.write_saved_model(tmp_path / "unrolled"))
    ops = litert.op_names(flatbuffer)
    assert "WHILE" not in ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops, ops
    assert all(op.isupper() for op in ops)
    # The input projection is hoisted: one input matmul per direction and layer, then one recurrent
    # matmul per step and direction (not two per step).
    directions = 2 if name.startswith("bi") else 1
    layers = options.get("num_layers", 1)
    matmuls = ops.count("FULLY_CONNECTED") + ops.count("BATCH_MATMUL")
    assert matmuls <= directions * layers * (model.sequence_length + 1) + 2, (matmuls, ops)

    # Texts of every length: without a known word, short, and cut at the window.
    texts = helpers.TEXTS[:6] + helpers.UNSEEN + [" ".join(helpers.TEXTS) * 3] + helpers.TEXTS[:1]
    expected = np.asarray(model.predict(tf.constant(texts), verbose=0))
    runner = Interpreter(model_content=flatbuffer, num_threads=2).get_signature_runner("serving_default")
    token_ids = model.preprocessor.reference().encode(texts)
    assert (token_ids != 0).sum(axis=1).max() == model.sequence_length
    got = np.concatenate([runner(token_ids=row[np.newaxis])["probabilities"] for row in token_ids])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The first text again, after other calls on the same interpreter: no state kept between calls.
    np.testing.assert_array_equal(got[-1], got[0])
