"""`TextClassifier.head`: the one place the classifier's output is computed from backbone features."""

import keras
import numpy as np

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
