"""Recurrent classifiers: SimpleRNN, LSTM and GRU, one- or two-directional.

One backbone covers the family; the registered variants only differ in the
cell and direction they pass in.
"""

import warnings

import keras
import keras_hub

from zoo.models.text_classifier import (CLASSIFIER_DEFAULTS, CLASSIFIER_TEST_CONFIG, TextClassifier,
                                       build_text_classifier)
from zoo.registry import register_model

# Max pooling deliberately takes the recurrent outputs with their padding
# mask: at masked steps a one-directional layer repeats its last text step's
# output, so the pool does not depend on padding; inside Bidirectional (where
# zero_output_for_mask is on) they are zeros, so it does not depend on how
# much padding follows, from one padding token on. Keras warns that the pool
# "destroys the mask" on every call; that is the intent here, so keep the
# warning quiet.
warnings.filterwarnings("ignore", message=r"Layer 'max_pool' \(of type GlobalMaxPooling1D\)")

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@keras.saving.register_keras_serializable(package="zoo")
class Float32Orthogonal(keras.initializers.Orthogonal):
    """Keras's orthogonal initializer, computed in float32 and cast to the variable's dtype.

    The recurrent layers' default: TensorFlow's QR has no bfloat16 kernel,
    so Keras's own fails to build them under a `bfloat16` policy. In float32
    the values are Keras's own.
    """

    def __call__(self, shape, dtype=None):
        return keras.ops.cast(super().__call__(shape, dtype="float32"), keras.backend.standardize_dtype(dtype))


@keras.saving.register_keras_serializable(package="zoo")
class RecurrentBackbone(keras_hub.models.Backbone):
    """Embedding, a stack of recurrent layers, then pooling over time.

    Takes `token_ids` of any length. Padding (id 0) is masked, so the result
    does not depend on how much padding follows the text (bidirectional with
    max pooling: from one padding token on, as its masked steps are zeros).

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        embedding_dim: int. Size of each token embedding.
        hidden_dim: int. Units of each recurrent layer (per direction).
        cell: str. One of `"simple_rnn"`, `"lstm"`, `"gru"`.
        num_layers: int. Number of stacked recurrent layers.
        bidirectional: bool. Run each layer forwards and backwards.
        dropout: float. Dropout on embeddings and between layers.
        pooling: `"last"` (final state) or `"max"` (max over time steps).

    Example:
    >>> backbone = RecurrentBackbone(100, embedding_dim=8, hidden_dim=4)
    >>> backbone(np.ones((2, 16), "int32")).shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=128,
        hidden_dim=64,
        cell="lstm",
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        pooling="last",
        dtype=None,
        **kwargs,
    ):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if pooling not in ("last", "max"):
            raise ValueError(f"pooling must be 'last' or 'max', got {pooling!r}")
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, dtype=dtype, name="token_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embedding_dropout")
        self.recurrent_layers = []
        for index in range(num_layers):
            # Every layer returns sequences except a last layer whose final
            # state is the output ("last" pooling).
            return_sequences = pooling == "max" or index < num_layers - 1
            layer = CELLS[cell](
                hidden_dim,
                return_sequences=return_sequences,
                recurrent_initializer=Float32Orthogonal(),
                dtype=dtype,
                name=f"{cell}_{index}",
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, dtype=dtype, name=f"bidirectional_{index}")
            self.recurrent_layers.append(layer)
        self.layer_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="layer_dropout")
        self.pooler = keras.layers.GlobalMaxPooling1D(dtype=dtype, name="max_pool") if pooling == "max" else None

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = self.embedding_dropout(self.token_embedding(token_ids))
        for index, layer in enumerate(self.recurrent_layers):
            x = layer(x)
            if index < num_layers - 1:
                x = self.layer_dropout(x)
        if self.pooler is not None:
            x = self.pooler(x)
        super().__init__(inputs=token_ids, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.pooling = pooling

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config


RECURRENT_DEFAULTS = dict(CLASSIFIER_DEFAULTS, embedding_dim=128, hidden_dim=64, num_layers=1, dropout=0.5,
                          pooling="max")


def build_recurrent_classifier(cell, bidirectional, **config):
    backbone_args = {
        key: config.pop(key)
        for key in ("embedding_dim", "hidden_dim", "num_layers", "pooling")
    }
    backbone = RecurrentBackbone(
        config["vocabulary_size"],
        cell=cell,
        bidirectional=bidirectional,
        dropout=config["dropout"],
        **backbone_args,
    )
    return build_text_classifier(backbone, **config)


@register_model(task="text-classification", family="simple_rnn", default_config=RECURRENT_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def simple_rnn_classifier(**config) -> TextClassifier:
    """Embedding + SimpleRNN (Elman) text classifier."""
    return build_recurrent_classifier("simple_rnn", False, **config)


@register_model(task="text-classification", family="lstm", default_config=RECURRENT_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def lstm_classifier(**config) -> TextClassifier:
    """Embedding + LSTM text classifier (the default model)."""
    return build_recurrent_classifier("lstm", False, **config)


@register_model(task="text-classification", family="lstm", default_config=RECURRENT_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def bilstm_classifier(**config) -> TextClassifier:
    """Embedding + bidirectional LSTM text classifier."""
    return build_recurrent_classifier("lstm", True, **config)


@register_model(task="text-classification", family="gru", default_config=RECURRENT_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def gru_classifier(**config) -> TextClassifier:
    """Embedding + GRU text classifier."""
    return build_recurrent_classifier("gru", False, **config)


@register_model(task="text-classification", family="gru", default_config=RECURRENT_DEFAULTS,
                test_config=CLASSIFIER_TEST_CONFIG)
def bigru_classifier(**config) -> TextClassifier:
    """Embedding + bidirectional GRU text classifier."""
    return build_recurrent_classifier("gru", True, **config)
