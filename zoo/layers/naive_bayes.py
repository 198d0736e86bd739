"""`NaiveBayesNgramLogits`: the "wide" half of a wide-and-deep text classifier.

Multinomial Naive Bayes over binarized unigrams and hashed bigrams (MNB-bi,
Wang & Manning 2012), computed from the same int32 token ids the backbone
reads. Inference is integer, comparison, gather and sum ops that convert to
TFLite builtins, so the exported token-id model stays builtins-only.
"""

import contextlib

import keras
import numpy as np

from zoo.preprocessing.reference import PAD_ID

# Bigram ids are `first * vocabulary_size + second` in int32 before hashing.
MAX_VOCABULARY_SIZE = 46340  # floor(sqrt(2**31 - 1))


@keras.saving.register_keras_serializable(package="zoo")
class NaiveBayesNgramLogits(keras.layers.Layer):
    """Per-class Naive Bayes scores of the n-grams present in each text.

    Unigram features are the token ids; bigram features are adjacent pairs
    hashed into `bigram_buckets` slots after the vocabulary. Padding and
    pairs touching padding are not features, and each feature counts once
    per text however often it occurs (NBSVM's binarization). The output is
    `scale` times the sum of the table rows of the features present:
    `[batch, num_classes]` logits.

    The table starts at zero. `fit` counts the features per class and sets
    the table to their centered, alpha-smoothed per-class log-probabilities
    (for two classes, plus and minus half the log-count ratio r), and
    `scale` to the leave-one-out calibrated value; `scale` stays trainable.
    In training under `leave_out(labels)` each example is scored from the
    counts without itself, so the network beside this layer learns from
    honest Naive Bayes scores rather than memorized ones.

    Args:
        vocabulary_size: int. Size of the token vocabulary (at most 46340).
        num_classes: int. Number of classes.
        bigram_buckets: int. Hashed bigram slots.
        alpha: float. Additive smoothing of the counts.

    Example:
    >>> layer = NaiveBayesNgramLogits(10, 2, bigram_buckets=16)
    >>> layer.fit(np.array([[2, 3, 0], [4, 3, 0]]), np.array([1, 0]))
    >>> layer(np.array([[2, 3, 0]], "int32")).shape
    TensorShape([1, 2])
    """

    def __init__(self, vocabulary_size, num_classes, bigram_buckets=2**18, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if not 2 <= vocabulary_size <= MAX_VOCABULARY_SIZE:
            raise ValueError(
                f"vocabulary_size must be in [2, {MAX_VOCABULARY_SIZE}] for int32 bigram ids, "
                f"got {vocabulary_size} (a classifier takes naive_bayes_buckets=0 to go without)"
            )
        if bigram_buckets < 1:
            raise ValueError(f"bigram_buckets must be positive, got {bigram_buckets}")
        self.vocabulary_size = int(vocabulary_size)
        self.num_classes = int(num_classes)
        self.bigram_buckets = int(bigram_buckets)
        self.alpha = float(alpha)
        self._held_out_labels = None

    @property
    def num_features(self):
        return self.vocabulary_size + self.bigram_buckets

    def build(self, input_shape):
        shape = (self.num_features, self.num_classes)
        # Per-class document counts of each feature: training reads them to
        # leave each example out of its own scores.
        self.counts = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="counts")
        # What inference reads: the scores `fit` derives from the counts.
        self.table = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="table")
        # How far to trust Naive Bayes next to the deep logits; learned.
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        super().build(input_shape)

    def features(self, token_ids):
        """`(feature_ids, present)`, both `[batch, 2 * length - 1]`, each row's features in descending order.

        `present` is False for padding and for repeats of a feature already
        counted in the same row.
        """
        token_ids = keras.ops.cast(token_ids, "int32")
        first, second = token_ids[:, :-1], token_ids[:, 1:]
        bigram_ids = keras.ops.mod(first * self.vocabulary_size + second, self.bigram_buckets)
        bigram_ids = bigram_ids + self.vocabulary_size
        bigram_ids = keras.ops.where(
            keras.ops.logical_and(keras.ops.not_equal(first, PAD_ID), keras.ops.not_equal(second, PAD_ID)),
            bigram_ids,
            PAD_ID,
        )
        feature_ids = keras.ops.concatenate([token_ids, bigram_ids], axis=1)
        # Binarize by sorting each row: a feature is present at its first
        # place in sorted order, so repeats drop out in memory linear in the
        # length (comparing every position with every earlier one took
        # [batch, 2L-1, 2L-1]). Every use sums over the row, so the order the
        # features come in does not matter. The sort is top_k over the whole
        # row: a builtin op in LiteRT (TOPK_V2) and ONNX (TopK).
        feature_ids = keras.ops.top_k(feature_ids, keras.ops.shape(feature_ids)[1], sorted=True)[0]
        previous = keras.ops.pad(feature_ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        present = keras.ops.logical_and(keras.ops.not_equal(feature_ids, PAD_ID),
                                        keras.ops.not_equal(feature_ids, previous))
        return feature_ids, present

    @contextlib.contextmanager
    def leave_out(self, labels):
        """Within this block, training calls score each example as if `fit`
        had not seen it (leave-one-out, from its `labels`).

        Without it the table has memorized the training texts, scores them
        near-perfectly, and leaves the deep part nothing to learn from.
        """
        self._held_out_labels = labels
        try:
            yield
        finally:
            self._held_out_labels = None

    def call(self, token_ids, training=None):
        feature_ids, present = self.features(token_ids)
        present = keras.ops.cast(present, self.compute_dtype)
        if training and self._held_out_labels is not None:
            scores = self._leave_one_out_scores(feature_ids, present, self._held_out_labels)
        else:
            scores = keras.ops.take(self.table, feature_ids, axis=0)
        return self.scale * keras.ops.sum(scores * present[:, :, None], axis=1)

    def _leave_one_out_scores(self, feature_ids, present, labels):
        if len(labels.shape) == 1:
            labels = keras.ops.one_hot(keras.ops.cast(labels, "int32"), self.num_classes)
        labels = keras.ops.cast(labels, self.compute_dtype)
        own = labels[:, None, :] * present[:, :, None]
        counts = keras.ops.take(self.counts, feature_ids, axis=0) - own
        totals = keras.ops.sum(self.counts, axis=0) - keras.ops.sum(own, axis=1)
        log_probabilities = keras.ops.log(counts + self.alpha) - keras.ops.log(
            totals + self.alpha * self.num_features
        )[:, None, :]
        return self._centered(log_probabilities, keras.ops.sum(counts, axis=-1, keepdims=True) > 0)

    @staticmethod
    def _centered(log_probabilities, seen):
        # Centering across classes leaves the softmax unchanged and keeps the
        # scores small next to the deep head's logits; features not seen in
        # training do not vote (the hashed slots of unseen bigrams above all).
        centered = log_probabilities - keras.ops.mean(log_probabilities, axis=-1, keepdims=True)
        return keras.ops.where(seen, centered, 0.0)

    def fit(self, token_ids, labels, batch_size=1024):
        """Count features in training token ids `[n, length]` with int labels `[n]`.

        The tables are `num_features x num_classes` (a million cells per four
        classes at the default sizes), so they are computed in float32 and in
        place: one working array beside the two weights.
        """
        token_ids = np.asarray(token_ids, dtype="int32")
        labels = np.asarray(labels, dtype="int64")
        if not self.built:
            self.build(token_ids.shape)
        counts = np.zeros((self.num_features, self.num_classes), dtype="float32")
        for start in range(0, len(token_ids), batch_size):
            feature_ids, present = (
                keras.ops.convert_to_numpy(x) for x in self.features(token_ids[start : start + batch_size])
            )
            rows = np.broadcast_to(labels[start : start + batch_size, None], feature_ids.shape)
            np.add.at(counts, (feature_ids[present], rows[present]), 1)
        self.counts.assign(counts)
        self.table.assign(self._table_in_place(counts))
        self.scale.assign(self._calibrated_scale(token_ids, labels, batch_size))

    def _table_in_place(self, counts):
        """`counts` turned into the centered, smoothed log-probabilities inference reads (see `_centered`)."""
        seen = counts.sum(axis=-1, dtype="float64") > 0
        totals = counts.sum(axis=0, dtype="float64") + self.alpha * self.num_features
        table = counts
        table += self.alpha
        np.log(table, out=table)
        table -= np.log(totals).astype(table.dtype)
        table -= table.mean(axis=-1, keepdims=True, dtype="float64").astype(table.dtype)
        table[~seen] = 0.0
        return table

    def _calibrated_scale(self, token_ids, labels, batch_size):
        """The scale that maximizes the leave-one-out likelihood of the training labels.

        Naive Bayes is overconfident (its features are not independent); the
        starting scale says by how much, and training adjusts it from there.
        """
        scores = []
        for start in range(0, len(token_ids), batch_size):
            feature_ids, present = self.features(token_ids[start : start + batch_size])
            present = keras.ops.cast(present, self.compute_dtype)
            batch_scores = self._leave_one_out_scores(feature_ids, present, labels[start : start + batch_size])
            scores.append(keras.ops.convert_to_numpy(keras.ops.sum(batch_scores * present[:, :, None], axis=1)))
        scores = np.concatenate(scores)
        candidates = np.geomspace(0.01, 2.0, 64)
        log_likelihoods = [
            np.mean(
                scale * scores[np.arange(len(labels)), labels]
                - np.logaddexp.reduce(scale * scores, axis=1)
            )
            for scale in candidates
        ]
        return candidates[int(np.argmax(log_likelihoods))]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_classes": self.num_classes,
                "bigram_buckets": self.bigram_buckets,
                "alpha": self.alpha,
            }
        )
        return config



@keras.saving.register_keras_serializable(package="zoo")
class OneVsRestNaiveBayesLogits(NaiveBayesNgramLogits):
    """Per-label Naive Bayes log-odds of the n-grams present, for labels that are not exclusive.

    NBSVM's log-count ratios (Wang & Manning 2012) one label at a time: texts
    with the label against texts without. Each label's table column holds, per
    feature, r = log P(present | label) - log P(present | not label), and its
    output is `scale * (sum of r over the features present) + log prior odds`:
    `[batch, num_labels]` logits for a sigmoid. The features, their
    binarization and leave-one-out training are `NaiveBayesNgramLogits`'.

    The presence rates are m-estimates: a label's rate of a feature counts
    `alpha` more texts showing it at its rate over all training texts, so a
    feature seen once says little either way. A rare label has few texts: the
    single-label layer's additive smoothing of multinomial counts (or
    Laplace's of presence counts) swamps them and ranks texts little better
    than chance (`benchmarks/multi_label_accuracy.py` compares).

    Args:
        vocabulary_size: int. Size of the token vocabulary (at most 46340).
        num_classes: int. Number of labels.
        bigram_buckets: int. Hashed bigram slots.
        alpha: float. Weight, in texts, of each feature's overall presence
            rate in its per-label rates.

    Example:
    >>> layer = OneVsRestNaiveBayesLogits(10, 3, bigram_buckets=16)
    >>> layer.fit(np.array([[2, 3, 0], [4, 3, 0]]), np.array([[1, 0, 1], [0, 0, 1]]))
    >>> layer(np.array([[2, 3, 0]], "int32")).shape
    TensorShape([1, 3])
    """

    def __init__(self, vocabulary_size, num_classes, bigram_buckets=2**18, alpha=100.0, **kwargs):
        super().__init__(vocabulary_size, num_classes, bigram_buckets=bigram_buckets, alpha=alpha, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        # `counts` holds, per feature and label, the texts with both; the
        # texts with the feature, the texts with the label and all texts
        # complete what leave-one-out needs.
        self.feature_counts = self.add_weight(
            shape=(self.num_features,), initializer="zeros", trainable=False, name="feature_counts"
        )
        self.label_counts = self.add_weight(
            shape=(self.num_classes,), initializer="zeros", trainable=False, name="label_counts"
        )
        self.num_texts = self.add_weight(shape=(), initializer="zeros", trainable=False, name="num_texts")
        # Log prior odds of each label; the deep head beside it learns its own bias.
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", trainable=False, name="bias")

    def call(self, token_ids, training=None):
        feature_ids, present = self.features(token_ids)
        present = keras.ops.cast(present, self.compute_dtype)
        if training and self._held_out_labels is not None:
            ratios, bias = self._leave_one_out_ratios(feature_ids, present, self._held_out_labels)
        else:
            ratios, bias = keras.ops.take(self.table, feature_ids, axis=0), self.bias
        return self.scale * keras.ops.sum(ratios * present[:, :, None], axis=1) + bias

    def _log_ratios(self, with_label, with_feature, label_counts, num_texts):
        """r and the log prior odds from counts: texts with feature and label, with the feature, with the label, all.

        `with_feature` and `num_texts` broadcast against `with_label`, `label_counts` against its last axis.
        """
        rate = self.alpha * with_feature / keras.ops.maximum(num_texts, 1.0)
        without_label = with_feature - with_label
        ratios = (keras.ops.log(with_label + rate) - keras.ops.log(label_counts + self.alpha)
                  - keras.ops.log(without_label + rate) + keras.ops.log(num_texts - label_counts + self.alpha))
        # Features never seen in training do not vote (the hashed slots of unseen bigrams above all).
        ratios = keras.ops.where(with_feature > 0, ratios, 0.0)
        # The prior is smoothed by one text each way, so a label on every text (or none) stays finite.
        prior = keras.ops.log(label_counts + 1.0) - keras.ops.log(num_texts - label_counts + 1.0)
        return ratios, prior

    def _leave_one_out_ratios(self, feature_ids, present, labels):
        # Counts are clamped at 0 so that texts `fit` did not see (or an
        # unfitted layer's, all 0) score as unseen features instead of taking
        # logs of negative counts; an unfitted layer has no prior either.
        labels = keras.ops.cast(labels, self.compute_dtype)
        with_label = keras.ops.take(self.counts, feature_ids, axis=0) - labels[:, None, :] * present[:, :, None]
        with_feature = keras.ops.take(self.feature_counts, feature_ids, axis=0) - present
        label_counts = keras.ops.maximum(self.label_counts - labels, 0.0)
        num_texts = keras.ops.maximum(self.num_texts - 1.0, 0.0)
        with_feature = keras.ops.maximum(with_feature, 0.0)[:, :, None]
        with_label = keras.ops.minimum(keras.ops.maximum(with_label, 0.0), with_feature)
        ratios, prior = self._log_ratios(with_label, with_feature, label_counts[:, None, :], num_texts)
        return ratios, keras.ops.where(self.num_texts > 0, prior[:, 0, :], 0.0)

    def fit(self, token_ids, labels, batch_size=1024):
        """Count features in training token ids `[n, length]` with multi-hot labels `[n, num_labels]`."""
        token_ids = np.asarray(token_ids, dtype="int32")
        labels = np.asarray(labels, dtype="float64")
        if labels.shape != (len(token_ids), self.num_classes):
            raise ValueError(f"labels must be multi-hot of shape {(len(token_ids), self.num_classes)}, "
                             f"got {labels.shape}")
        if not self.built:
            self.build(token_ids.shape)
        counts = np.zeros((self.num_features, self.num_classes))
        feature_counts = np.zeros(self.num_features)
        for start in range(0, len(token_ids), batch_size):
            feature_ids, present = (
                keras.ops.convert_to_numpy(x) for x in self.features(token_ids[start : start + batch_size])
            )
            rows = np.broadcast_to(np.arange(len(feature_ids))[:, None], feature_ids.shape)
            np.add.at(counts, feature_ids[present], labels[start : start + batch_size][rows[present]])
            np.add.at(feature_counts, feature_ids[present], 1)
        counts, feature_counts = counts.astype("float32"), feature_counts.astype("float32")
        label_counts, num_texts = labels.sum(axis=0).astype("float32"), np.float32(len(token_ids))
        table, bias = self._log_ratios(counts, feature_counts[:, None], label_counts, num_texts)
        self.counts.assign(counts.astype(self.counts.dtype))
        self.feature_counts.assign(feature_counts.astype(self.feature_counts.dtype))
        self.label_counts.assign(label_counts.astype(self.label_counts.dtype))
        self.num_texts.assign(num_texts)
        self.table.assign(keras.ops.cast(table, self.table.dtype))
        self.bias.assign(keras.ops.cast(bias, self.bias.dtype))
        self.scale.assign(self._calibrated_scale(token_ids, labels, batch_size))

    def _calibrated_scale(self, token_ids, labels, batch_size):
        """The scale that maximizes the leave-one-out likelihood of every (text, label) decision."""
        evidence, priors = [], []
        for start in range(0, len(token_ids), batch_size):
            feature_ids, present = self.features(token_ids[start : start + batch_size])
            present = keras.ops.cast(present, self.compute_dtype)
            ratios, prior = self._leave_one_out_ratios(feature_ids, present, labels[start : start + batch_size])
            evidence.append(keras.ops.convert_to_numpy(keras.ops.sum(ratios * present[:, :, None], axis=1)))
            priors.append(keras.ops.convert_to_numpy(prior))
        evidence, priors = np.concatenate(evidence), np.concatenate(priors)
        signs = 2.0 * labels - 1.0
        candidates = np.geomspace(0.01, 2.0, 64)
        # log sigmoid(sign * logit), summed over labels, averaged over texts.
        log_likelihoods = [-np.mean(np.sum(np.logaddexp(0.0, -signs * (scale * evidence + priors)), axis=1))
                           for scale in candidates]
        return candidates[int(np.argmax(log_likelihoods))]
