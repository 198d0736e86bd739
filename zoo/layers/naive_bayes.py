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
        """`(feature_ids, present)`, both `[batch, 2 * length - 1]`.

        `present` is False for padding and for repeats of a feature already
        seen earlier in the same row.
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
        # Binarize with a pairwise comparison against earlier positions: the
        # rows are short (two per token), and sorting or bincounting would
        # need ops that LiteRT lacks as builtins. The length may be unknown
        # until run time; when it is fixed (as in an export), `earlier`
        # folds to a constant.
        positions = keras.ops.arange(keras.ops.shape(feature_ids)[1])
        earlier = keras.ops.greater(positions[:, None], positions[None, :])
        repeats = keras.ops.logical_and(
            keras.ops.equal(feature_ids[:, :, None], feature_ids[:, None, :]), earlier
        )
        present = keras.ops.logical_and(
            keras.ops.not_equal(feature_ids, PAD_ID), keras.ops.logical_not(keras.ops.any(repeats, axis=-1))
        )
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
        """Count features in training token ids `[n, length]` with int labels `[n]`."""
        token_ids = np.asarray(token_ids, dtype="int32")
        labels = np.asarray(labels, dtype="int64")
        if not self.built:
            self.build(token_ids.shape)
        counts = np.zeros((self.num_features, self.num_classes))
        for start in range(0, len(token_ids), batch_size):
            feature_ids, present = (
                keras.ops.convert_to_numpy(x) for x in self.features(token_ids[start : start + batch_size])
            )
            rows = np.broadcast_to(labels[start : start + batch_size, None], feature_ids.shape)
            np.add.at(counts, (feature_ids[present], rows[present]), 1)
        log_probabilities = np.log(counts + self.alpha) - np.log(
            counts.sum(axis=0) + self.alpha * self.num_features
        )
        table = self._centered(log_probabilities, counts.sum(axis=-1, keepdims=True) > 0)
        self.counts.assign(counts.astype(self.counts.dtype))
        self.table.assign(keras.ops.cast(table, self.table.dtype))
        self.scale.assign(self._calibrated_scale(token_ids, labels, batch_size))

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
