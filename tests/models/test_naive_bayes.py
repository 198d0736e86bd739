"""The Naive Bayes n-gram branch: features, fitting, leave-one-out, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from zoo.layers import NaiveBayesNgramLogits

TOKEN_IDS = np.array([[2, 3, 2, 3, 4, 0], [5, 5, 5, 0, 0, 0], [1, 4, 3, 0, 0, 0]], dtype="int32")
LABELS = np.array([1, 0, 1])


def reference_features(row, vocabulary_size, bigram_buckets):
    """The set of features of one row, in plain Python."""
    words = [token for token in row.tolist() if token != 0]
    bigrams = {(a * vocabulary_size + b) % bigram_buckets + vocabulary_size for a, b in zip(words, words[1:])}
    return set(words) | bigrams


def test_features_are_binarized_unigrams_and_hashed_bigrams():
    layer = NaiveBayesNgramLogits(10, 2, bigram_buckets=7)
    feature_ids, present = (keras.ops.convert_to_numpy(x) for x in layer.features(TOKEN_IDS))
    for row, ids, keep in zip(TOKEN_IDS, feature_ids, present):
        assert sorted(ids[keep].tolist()) == sorted(reference_features(row, 10, 7))


def test_fit_gives_half_log_count_ratios_and_ignores_unseen_features():
    layer = NaiveBayesNgramLogits(10, 2, bigram_buckets=7)
    layer.fit(TOKEN_IDS, LABELS)
    counts = np.zeros((2, 17))
    for row, label in zip(TOKEN_IDS, LABELS):
        for feature in reference_features(row, 10, 7):
            counts[label, feature] += 1
    smoothed = counts + 1.0
    ratio = np.log(smoothed[1] / smoothed[1].sum()) - np.log(smoothed[0] / smoothed[0].sum())
    ratio[counts.sum(axis=0) == 0] = 0.0
    table = keras.ops.convert_to_numpy(layer.table)
    np.testing.assert_allclose(table[:, 1], ratio / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table[:, 0], -ratio / 2, rtol=1e-5, atol=1e-6)
    # Padding and never-seen ids score exactly zero.
    scores = keras.ops.convert_to_numpy(layer(np.array([[0, 0, 0, 0, 0, 0], [9, 0, 8, 0, 0, 0]], "int32")))
    assert np.all(scores == 0.0)
    assert 0.0 < float(layer.scale.numpy()) <= 2.0


def test_leave_one_out_scores_match_a_refit_without_the_example():
    token_ids = np.concatenate([TOKEN_IDS, TOKEN_IDS[:, ::-1]])
    labels = np.array([1, 0, 2, 2, 1, 0])
    layer = NaiveBayesNgramLogits(10, 3, bigram_buckets=7)
    layer.fit(token_ids, labels)
    with layer.leave_out(labels):
        held_out = keras.ops.convert_to_numpy(layer(token_ids, training=True))
    for index in range(len(token_ids)):
        refit = NaiveBayesNgramLogits(10, 3, bigram_buckets=7)
        keep = np.arange(len(token_ids)) != index
        refit.fit(token_ids[keep], labels[keep])
        refit.scale.assign(layer.scale)
        np.testing.assert_allclose(
            held_out[index], keras.ops.convert_to_numpy(refit(token_ids[index : index + 1]))[0], atol=1e-5
        )
    # Outside the block (and at inference) the full table is used.
    assert not np.allclose(keras.ops.convert_to_numpy(layer(token_ids, training=True)), held_out)


def test_scores_take_ids_of_any_length_and_ignore_trailing_padding():
    layer = NaiveBayesNgramLogits(10, 2, bigram_buckets=7)
    layer.fit(TOKEN_IDS, LABELS)
    expected = keras.ops.convert_to_numpy(layer(TOKEN_IDS))
    assert np.any(expected != 0.0)
    # A length unknown until run time, as in a model whose token_ids input is `[batch, None]`.
    scores = tf.function(layer, input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for token_ids in (TOKEN_IDS[:, :5], np.pad(TOKEN_IDS, [(0, 0), (0, 4)])):
        np.testing.assert_allclose(scores(token_ids).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(scores(TOKEN_IDS[:1, :1]).numpy(), layer(TOKEN_IDS[:1, :1]), atol=1e-6)


def test_vocabulary_too_large_for_int32_bigram_ids():
    with pytest.raises(ValueError, match="vocabulary_size"):
        NaiveBayesNgramLogits(50000, 2)


def test_layer_config_round_trip():
    layer = NaiveBayesNgramLogits(10, 3, bigram_buckets=7, alpha=0.5)
    clone = NaiveBayesNgramLogits.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.slow
def test_fitted_classifier_trains_saves_and_exports(tmp_path):
    model = helpers.build_tiny("lstm_classifier", class_names=["negative", "positive"])
    assert model.naive_bayes is not None
    model.adapt(helpers.TEXTS, helpers.LABELS)
    assert np.any(keras.ops.convert_to_numpy(model.naive_bayes.table) != 0.0)
    model.fit(helpers.TEXTS, helpers.LABELS, epochs=3, batch_size=8, verbose=0)
    assert [label for label, _ in model.predict_labels(["a great film", "a dull film"])] == ["positive", "negative"]
    helpers.run_model_saving_test(model, tmp_path)
    helpers.run_export_test(model, tmp_path)


def test_multi_class_classifier_with_naive_bayes():
    texts = helpers.TEXTS + ["neither here nor there", "an average film", "it was fine"] * 4
    labels = np.concatenate([helpers.LABELS, np.full(12, 2, dtype="int32")])
    model = helpers.build_tiny("gru_classifier", num_classes=3)
    model.adapt(texts, labels)
    model.fit(texts, labels, epochs=5, batch_size=8, verbose=0)
    assert model.evaluate(texts, labels, verbose=0, return_dict=True)["accuracy"] > 0.9
    probabilities = model.predict(helpers.UNSEEN, verbose=0)
    assert probabilities.shape == (len(helpers.UNSEEN), 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_binarized_features_take_memory_linear_in_the_length():
    import tensorflow as tf

    layer = NaiveBayesNgramLogits(vocabulary_size=50, num_classes=3, bigram_buckets=64)
    length = 300
    layer.build((None, length))
    graph = tf.function(layer.features).get_concrete_function(tf.TensorSpec([2, length], tf.int32)).graph
    largest = max(int(np.prod(output.shape)) for op in graph.get_operations() for output in op.outputs
                  if output.shape.is_fully_defined())
    assert largest <= 2 * (2 * length - 1)  # the pairwise comparison made [2, 599, 599]
    # Repeats and padding drop out exactly as a set of the row's features would.
    ids = np.array([[3, 4, 3, 4, 3, 0, 0], [5, 5, 5, 5, 0, 0, 0]], np.int32)
    feature_ids, present = (np.asarray(x) for x in layer.features(ids))
    for row, (features, kept) in enumerate(zip(feature_ids, present)):
        tokens = [t for t in ids[row] if t]
        expected = set(tokens) | {50 + (a * 50 + b) % 64 for a, b in zip(tokens, tokens[1:])}
        assert sorted(features[kept].tolist()) == sorted(expected)
