"""What zoo's classifier backbones promise beyond keras-hub's contract (tests/models/test_models.py):
any length in, padding-independent features out, every precision policy."""

import keras
import numpy as np
import pytest

import zoo
from tests import helpers
from zoo.models import CNNBackbone, RecurrentBackbone, TransformerBackbone
from zoo.models.recurrent import Float32Orthogonal

CLASSIFIERS = zoo.list_models(task="text-classification")


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_features_do_not_depend_on_length_or_trailing_padding(name):
    model = helpers.build_tiny(name)
    backbone = model.backbone
    assert tuple(backbone.input.shape) == (None, None)
    longest = getattr(backbone, "max_sequence_length", 3 * model.sequence_length)
    paddings = [0, 1, 4, model.sequence_length - 3, longest - 3]
    if getattr(backbone, "bidirectional", False) and backbone.pooling == "max":
        # Inside Bidirectional, masked steps output zeros, which the max pool sees: independent of how much
        # padding follows, from one padding token on (what the fused LSTM export reproduces).
        paddings.remove(0)
    # One-token and three-token texts: shorter than the CNN's widest kernel (5), then padded to lengths on
    # both sides of the window the model was built for.
    for text in ([7], [5, 9, 3]):
        features = [keras.ops.convert_to_numpy(backbone(np.array([text + [0] * padding], "int32")))
                    for padding in paddings]
        for padded in features[1:]:
            np.testing.assert_allclose(padded, features[0], atol=1e-6)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_the_classifier_reads_its_preprocessors_window_and_takes_ids_of_any_length(name):
    model = helpers.build_tiny(name, sequence_length=9)
    assert model.sequence_length == model.preprocessor.sequence_length == 9
    ids = model.preprocessor(helpers.TEXTS[:3])
    assert tuple(ids.shape) == (3, 9)
    from_texts = model.predict(helpers.TEXTS[:3], verbose=0)
    # Without its preprocessor the classifier takes token ids, at its window or any other length.
    model.preprocessor = None
    assert model.sequence_length is None
    np.testing.assert_allclose(model.predict(ids, verbose=0), from_texts, atol=1e-6)
    shorter = keras.ops.convert_to_numpy(ids)[:, :7]
    assert np.all(shorter[:, -1] == 0)  # the texts are at most six words long
    np.testing.assert_allclose(model.predict(shorter, verbose=0), from_texts, atol=1e-6)
    if not hasattr(model.backbone, "max_sequence_length"):
        longer = np.pad(keras.ops.convert_to_numpy(ids), [(0, 0), (0, 3)])
        np.testing.assert_allclose(model.predict(longer, verbose=0), from_texts, atol=1e-6)


def test_the_transformer_learns_positions_for_the_classifiers_window_only():
    model = helpers.build_tiny("transformer_classifier", sequence_length=10)
    assert model.backbone.max_sequence_length == 10
    assert model.backbone.get_layer("position_embedding").position_embeddings.shape[0] == 10
    with pytest.raises(Exception, match="10"):
        model.backbone(np.ones((1, 11), "int32"))


def test_the_cnn_runs_windows_past_the_end_of_a_full_row():
    backbone = CNNBackbone(20, embedding_dim=4, hidden_dim=3, kernel_sizes=[2, 5])
    # A text filling its row scores as the same text followed by padding: its last tokens start windows too.
    full = np.array([[3, 4, 5, 6]], "int32")
    np.testing.assert_allclose(backbone(full), backbone(np.pad(full, [(0, 0), (0, 6)])), atol=1e-6)
    assert [layer.padding for layer in backbone.paddings] == [(0, 1), (0, 4)]
    np.testing.assert_array_equal(backbone(np.zeros((2, 3), "int32")), np.zeros((2, 6)))


def test_backbone_constructors_take_no_sequence_length():
    for backbone in (RecurrentBackbone(20, embedding_dim=4, hidden_dim=4), CNNBackbone(20, embedding_dim=4),
                     TransformerBackbone(20, max_sequence_length=8, embedding_dim=4, hidden_dim=8, num_heads=2)):
        assert "sequence_length" not in backbone.get_config()
        assert type(backbone).from_config(backbone.get_config()).get_config() == backbone.get_config()


def test_float32_orthogonal_is_keras_orthogonal_in_float32_and_builds_in_bfloat16():
    np.testing.assert_array_equal(Float32Orthogonal(seed=3)((6, 6), "float32"),
                                  keras.initializers.Orthogonal(seed=3)((6, 6), "float32"))
    values = Float32Orthogonal(seed=3)((6, 6), "bfloat16")
    assert keras.backend.standardize_dtype(values.dtype) == "bfloat16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(values, "float32")),
                               keras.initializers.Orthogonal(seed=3)((6, 6), "float32"), atol=1e-2)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_recurrent_backbones_build_and_run_in_bfloat16(cell):
    backbone = RecurrentBackbone(20, embedding_dim=4, hidden_dim=4, cell=cell, bidirectional=True, dtype="bfloat16")
    assert all(weight.dtype == "bfloat16" for weight in backbone.weights)
    assert backbone(np.array([[3, 4, 0]], "int32")).dtype == "bfloat16"
