"""`TextClassifier.head`: the one place the classifier's output is computed from backbone features."""

import keras
import numpy as np
import pytest

from tests import helpers
from zoo.models import TextClassifier


def test_head_on_the_backbones_features_is_the_model():
    model = helpers.build_tiny("gru_classifier")
    model.adapt(helpers.TEXTS, helpers.LABELS)
    assert model.naive_bayes is not None
    token_ids = model.preprocessor(helpers.TEXTS)
    expected = keras.ops.convert_to_numpy(model(token_ids))
    assert np.any(keras.ops.convert_to_numpy(model.naive_bayes(token_ids)) != 0.0)
    np.testing.assert_allclose(model.head(model.backbone(token_ids), token_ids), expected, atol=1e-6)


def test_the_functional_graph_is_built_through_head():
    class ReversedClasses(TextClassifier):
        def head(self, features, token_ids):
            return keras.ops.flip(super().head(features, token_ids), axis=-1)

    model = helpers.build_tiny("cnn_classifier")
    reversed_classes = ReversedClasses(model.backbone, preprocessor=model.preprocessor, naive_bayes_buckets=16)
    token_ids = model.preprocessor(helpers.TEXTS)
    probabilities = TextClassifier.head(reversed_classes, model.backbone(token_ids), token_ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reversed_classes(token_ids)),
                               keras.ops.convert_to_numpy(probabilities)[:, ::-1], atol=1e-6)


def test_the_whole_models_logits_are_its_branchs_plus_its_deep_parts():
    model = helpers.build_tiny("lstm_classifier")
    model.adapt(helpers.TEXTS, helpers.LABELS)
    texts = helpers.TEXTS + helpers.UNSEEN
    whole, branch, deep = (model.part_logits(texts, part, batch_size=5) for part in ("whole", "branch", "deep"))
    assert np.any(branch != 0.0) and np.any(deep != 0.0)
    np.testing.assert_allclose(whole, branch + deep, atol=1e-5)
    # The whole logits are what predict's softmax reads.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(whole)),
                               model.predict(texts, verbose=0), atol=1e-5)
    token_ids = model.preprocessor(texts)
    np.testing.assert_allclose(branch, keras.ops.convert_to_numpy(model.naive_bayes(token_ids)), atol=1e-6)


def test_part_accuracies_score_each_part_on_its_own():
    model = helpers.build_tiny("cnn_classifier")
    model.adapt(helpers.TEXTS, helpers.LABELS)
    texts, labels = ["a great film", "a dull film", "i loved it", "i hated it"], np.array([1, 0, 0, 1])
    # An untrained network gives every text the same class: set its output layer so that class is 0 for all,
    # by far, and the whole model follows it; the branch alone reads the words (it is right on the first two).
    kernel, bias = model.output_dense.get_weights()
    model.output_dense.set_weights([np.zeros_like(kernel), np.array([100.0, -100.0], bias.dtype)])
    assert np.argmax(model.part_logits(texts, "branch"), axis=-1).tolist() == [1, 0, 1, 0]
    assert model.part_accuracies(texts, labels) == {"whole": 0.5, "branch": 0.5, "deep": 0.5}
    assert model.part_accuracies(texts, np.array([1, 0, 1, 0])) == {"whole": 0.5, "branch": 1.0, "deep": 0.5}
    assert model.part_accuracies(texts, np.array([0, 0, 0, 0])) == {"whole": 1.0, "branch": 0.5, "deep": 1.0}


def test_a_model_without_the_branch_scores_its_whole_only():
    model = helpers.build_tiny("gru_classifier", naive_bayes_buckets=0)
    model.adapt(helpers.TEXTS, helpers.LABELS)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(model.part_logits(helpers.TEXTS))),
                               model.predict(helpers.TEXTS, verbose=0), atol=1e-5)
    assert set(model.part_accuracies(helpers.TEXTS, helpers.LABELS)) == {"whole"}
    with pytest.raises(ValueError, match="no Naive Bayes branch"):
        model.part_logits(helpers.TEXTS, "branch")
    with pytest.raises(ValueError, match="part must be one of whole, branch, deep"):
        model.part_logits(helpers.TEXTS, "wide")
