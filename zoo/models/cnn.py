"""Convolutional text classifier: Kim (2014)'s CNN-rand.

Parallel convolutions of a few widths over randomly initialised word
embeddings, each max-pooled over time, then concatenated; the shared head adds
Kim's dropout on that penultimate layer (and the Naive Bayes branch).
"""

import keras
import keras_hub

from zoo.models.text_classifier import (CLASSIFIER_DEFAULTS, CLASSIFIER_TEST_CONFIG, TextClassifier,
                                       build_text_classifier)
from zoo.preprocessing.reference import PAD_ID
from zoo.registry import register_model


@keras.saving.register_keras_serializable(package="zoo")
class CNNBackbone(keras_hub.models.Backbone):
    """Embedding, one ReLU convolution per kernel width, max over time, concatenated.

    Takes `token_ids` of any length, even shorter than the widest kernel:
    each text is followed by zeros as in zero-padded convolution, so every
    text token starts a window. Padding (id 0, at the end of each row) embeds
    to zeros too, and windows starting in padding are left out of the max, so
    the result does not depend on how much padding follows the text; an
    all-padding row (the empty string) pools to zeros.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        embedding_dim: int. Size of each token embedding.
        hidden_dim: int. Filters per kernel width; the output has
            `hidden_dim * len(kernel_sizes)` features.
        kernel_sizes: list of distinct ints. Window widths, in tokens.

    Example:
    >>> backbone = CNNBackbone(100, embedding_dim=8, hidden_dim=4, kernel_sizes=[3, 4, 5])
    >>> backbone(np.ones((2, 16), "int32")).shape
    TensorShape([2, 12])
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=128,
        hidden_dim=100,
        kernel_sizes=(3, 4, 5),
        dtype=None,
        **kwargs,
    ):
        if isinstance(kernel_sizes, (int, str)):
            raise ValueError(f"kernel_sizes must be a list of widths, e.g. [3, 4, 5], got {kernel_sizes!r}")
        kernel_sizes = [int(size) for size in kernel_sizes]
        if not kernel_sizes:
            raise ValueError("kernel_sizes must name at least one width, e.g. [3, 4, 5]")
        if min(kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be positive, got {kernel_sizes}")
        if len(set(kernel_sizes)) != len(kernel_sizes):
            raise ValueError(
                f"kernel_sizes must be distinct, got {kernel_sizes}; raise hidden_dim for more filters per width"
            )
        if hidden_dim < 1 or embedding_dim < 1:
            raise ValueError(
                f"hidden_dim and embedding_dim must be positive, got {hidden_dim} and {embedding_dim}"
            )
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, dtype=dtype, name="token_embedding"
        )
        # `size - 1` zeros after each row: one window per token, whatever the length.
        self.paddings = [
            keras.layers.ZeroPadding1D((0, size - 1), dtype=dtype, name=f"zero_pad_width_{size}")
            for size in kernel_sizes
        ]
        self.convolutions = [
            keras.layers.Conv1D(hidden_dim, size, activation="relu", dtype=dtype, name=f"conv_width_{size}")
            for size in kernel_sizes
        ]
        self.poolers = [
            keras.layers.GlobalMaxPooling1D(dtype=dtype, name=f"max_pool_width_{size}") for size in kernel_sizes
        ]
        self.concatenate = keras.layers.Concatenate(dtype=dtype, name="concatenate") if len(kernel_sizes) > 1 else None

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        # The mask is computed here rather than with `mask_zero`: Conv1D does
        # not consume Keras masks.
        embeddings = self.token_embedding(token_ids)
        is_text = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(token_ids, PAD_ID), embeddings.dtype), -1)
        # Zero padding embeddings, so a window running past the end of a
        # text sees zeros (as with zero-padded convolution), not a learned vector.
        x = embeddings * is_text
        pooled = []
        for padding, convolution, pooler in zip(self.paddings, self.convolutions, self.poolers):
            # Padding trails the text, so window t lies wholly in padding
            # exactly when token t is padding. Those windows are set to 0
            # rather than to a large negative value: after the ReLU every
            # window is >= 0, so the max is the same, an all-padding row pools
            # to 0 instead of -inf, and an int8 file keeps a sane range.
            windows = convolution(padding(x)) * is_text
            pooled.append(pooler(windows))
        x = self.concatenate(pooled) if self.concatenate is not None else pooled[0]
        super().__init__(inputs=token_ids, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.kernel_sizes = kernel_sizes

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "kernel_sizes": list(self.kernel_sizes),
            }
        )
        return config


# Kim's CNN-rand: 100 filters for each of the widths 3, 4, 5, and dropout 0.5
# on the pooled features.
CNN_DEFAULTS = dict(CLASSIFIER_DEFAULTS, embedding_dim=128, hidden_dim=100, kernel_sizes=(3, 4, 5), dropout=0.5)


@register_model(task="text-classification", family="cnn", default_config=CNN_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def cnn_classifier(**config) -> TextClassifier:
    """Embedding + parallel convolutions of widths 3/4/5, max over time (Kim 2014)."""
    backbone = CNNBackbone(
        config["vocabulary_size"],
        **{key: config.pop(key) for key in ("embedding_dim", "hidden_dim", "kernel_sizes")},
    )
    return build_text_classifier(backbone, **config)
