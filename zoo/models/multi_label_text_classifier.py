"""`MultiLabelTextClassifier`: any number of independent labels (tags) per text, over any zoo backbone.

A backbone, a dropout and one sigmoid per label, with zoo's
`TextClassifierPreprocessor` attached so `fit`, `evaluate`, `predict` and
`predict_labels` take raw strings; saved as one `.keras` file. A label is
predicted where its score reaches its own threshold: 0.5 until
`choose_thresholds` sets each label's to the one maximizing its F1 on
held-out texts (zoo's training does this on the validation split).

Optionally wide and deep, as the single-label `TextClassifier`: a one-vs-rest
Naive Bayes n-gram branch (NBSVM's log-count ratios, one per label) adds its
log-odds to the head's logits.
"""

import inspect

import keras
import numpy as np

from zoo.evaluation import DEFAULT_THRESHOLD, best_f1_thresholds, labels_over_thresholds
from zoo.layers.naive_bayes import OneVsRestNaiveBayesLogits
from zoo.models.cnn import CNNBackbone
from zoo.models.recurrent import RecurrentBackbone
from zoo.models.text_classifier import WordClassifier
from zoo.models.text_classifier_preprocessor import TextClassifierPreprocessor
from zoo.models.transformer import TransformerBackbone
from zoo.preprocessing import WordTokenizer
from zoo.registry import register_model

TASK = "multi-label-classification"


@keras.saving.register_keras_serializable(package="zoo")
class MultiLabelTextClassifier(WordClassifier):
    """Tag raw strings with any subset of `num_classes` named labels.

    The output, `probabilities` `[batch, num_classes]`, is one independent
    sigmoid score per label (they do not sum to 1), trained with binary
    cross-entropy on multi-hot labels.

    Args:
        backbone: a `keras_hub.models.Backbone` mapping `token_ids` to
            features `[batch, hidden]` (and with a `vocabulary_size`).
        num_classes: int. Number of labels.
        preprocessor: `TextClassifierPreprocessor` or None (then the model
            takes token ids).
        class_names: list of str, one per label; defaults to "0", "1", ...
        thresholds: list of float in [0, 1], one per label: a label is
            predicted where its score is at least its threshold. None is 0.5
            for every label.
        dropout: float. Dropout before the output layer.
        learning_rate: float. Adam's learning rate for the default `compile`.
        naive_bayes_buckets: int. Hashed bigram slots of the one-vs-rest Naive
            Bayes branch (unigrams use the vocabulary ids); 0 leaves the
            branch out. The branch is fitted by `adapt(texts, labels)`.

    Example:
    >>> tagger = zoo.create_model("lstm_multi_label_classifier", num_classes=2, class_names=["ROMEO", "JULIET"])
    >>> texts, labels = ["o romeo", "o juliet", "o romeo and juliet", "a street"], [[1, 0], [0, 1], [1, 1], [0, 0]]
    >>> tagger.adapt(texts, labels)
    >>> tagger.fit(texts, labels, epochs=2, verbose=0)
    >>> tagger.predict(["romeo, romeo"]).shape  # one independent score per label
    (1, 2)
    >>> tagger.choose_thresholds(texts, labels)  # on held-out texts in practice
    >>> tagger.predict_labels(["romeo, romeo"])  # [[(label, score), ...]]: labels over their thresholds, best first
    """

    # How zoo's training treats this task (`zoo.training`): labels are sets of
    # names, read as lists and given as a multi-hot matrix; the best epoch is
    # the one with the lowest validation loss (threshold-free: the thresholds
    # are chosen after training, so F1 at 0.5 would judge epochs by a decision
    # rule that is then replaced).
    multi_label = True
    monitor = ("val_loss", "min")

    def __init__(
        self,
        backbone,
        num_classes=2,
        preprocessor=None,
        class_names=None,
        thresholds=None,
        dropout=0.0,
        learning_rate=1e-3,
        naive_bayes_buckets=0,
        **kwargs,
    ):
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but num_classes={num_classes}")
        thresholds = _checked_thresholds(thresholds, num_classes)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(num_classes, dtype="float32", name="logits")
        if naive_bayes_buckets:
            self.naive_bayes = OneVsRestNaiveBayesLogits(
                backbone.vocabulary_size, num_classes, naive_bayes_buckets, dtype="float32", name="naive_bayes"
            )
            self.wide_and_deep = keras.layers.Add(dtype="float32", name="wide_and_deep")
        else:
            self.naive_bayes = self.wide_and_deep = None
        self.output_activation = keras.layers.Activation("sigmoid", dtype="float32", name="probabilities")

        # === Functional Model ===
        token_ids = backbone.input
        outputs = self.head(backbone(token_ids), token_ids)
        self.learning_rate = float(learning_rate)
        super().__init__(inputs=token_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.class_names = class_names
        self.thresholds = thresholds
        self.dropout = dropout
        self.naive_bayes_buckets = int(naive_bayes_buckets)
        self.activation = "sigmoid"

    def head(self, features, token_ids):
        """Backbone features (and the token ids, for the Naive Bayes branch) to the label scores."""
        logits = self.output_dense(self.output_dropout(features))
        if self.naive_bayes is not None:
            logits = self.wide_and_deep([logits, self.naive_bayes(token_ids)])
        return self.output_activation(logits)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        # keras-hub's defaults are Adam 5e-5 (for fine-tuning pretrained
        # transformers) and softmax cross-entropy; these labels are independent.
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(self.learning_rate)
        if loss == "auto":
            loss = keras.losses.BinaryCrossentropy(from_logits=False)
        if metrics == "auto":
            metrics = [
                keras.metrics.F1Score(average="micro", threshold=DEFAULT_THRESHOLD, name="micro_f1"),
                keras.metrics.F1Score(average="macro", threshold=DEFAULT_THRESHOLD, name="macro_f1"),
            ]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def adapt(self, texts, labels=None):
        """Learn the tokenizer's vocabulary from Python strings.

        With `labels` (multi-hot, `[len(texts), num_classes]`) also fit the
        Naive Bayes branch, whose bias is each label's log prior odds; a model
        without the branch starts its output bias there instead. Without
        labels the branch scores zero.
        """
        texts = list(texts)
        self.preprocessor.tokenizer.adapt(texts)
        if labels is None:
            return
        if self.naive_bayes is not None:
            self.naive_bayes.fit(keras.ops.convert_to_numpy(self.preprocessor(self.string_batch(texts))), labels)
        else:
            # At 0 every label starts at 0.5, and rare labels spend the first epochs learning how rare they are.
            labels = np.asarray(labels, dtype="float64")
            rates = (labels.sum(axis=0) + 1.0) / (len(labels) + 2.0)
            self.output_dense.bias.assign(np.log(rates / (1.0 - rates)).astype("float32"))

    def predict_labels(self, texts, batch_size=64):
        """For each text, `[(label, score), ...]`: every label at or above its threshold, highest score first."""
        self._check_not_one_string(texts, "predict_labels")
        scores = self.predict(list(texts), batch_size=batch_size, verbose=0)
        return [labels_over_thresholds(row, self.class_names, self.thresholds) for row in scores]

    def choose_thresholds(self, texts, labels, batch_size=128):
        """Set each label's threshold to the one maximizing its F1 on held-out `texts` and multi-hot `labels`.

        See `zoo.evaluation.best_f1_thresholds` for ties and for labels with
        no held-out positive (they keep 0.5). Returns the thresholds.
        """
        scores = self.predict(list(texts), batch_size=batch_size, verbose=0)
        self.thresholds = _checked_thresholds(best_f1_thresholds(labels, scores), self.num_classes)
        return self.thresholds

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "class_names": self.class_names,
                "thresholds": list(self.thresholds),
                "dropout": self.dropout,
                "learning_rate": self.learning_rate,
                "naive_bayes_buckets": self.naive_bayes_buckets,
            }
        )
        return config


def _checked_thresholds(thresholds, num_classes):
    if thresholds is None:
        return [DEFAULT_THRESHOLD] * num_classes
    thresholds = [float(threshold) for threshold in thresholds]
    if len(thresholds) != num_classes or not all(0.0 <= threshold <= 1.0 for threshold in thresholds):
        raise ValueError(f"thresholds must be {num_classes} numbers in [0, 1], one per label, got {thresholds}")
    return thresholds


# The preprocessor's and the head's keys; every other key of a variant's
# config that its backbone's constructor names goes to the backbone.
TOKENIZER_KEYS = ("vocabulary", "vocabulary_size", "lower", "punctuation", "min_count")
HEAD_KEYS = ("num_classes", "class_names", "thresholds", "dropout", "learning_rate", "naive_bayes_buckets")


def build_multi_label_classifier(backbone_class, config, **backbone_choices):
    """The task over `backbone_class(**the config keys its constructor takes, **backbone_choices)`."""
    parameters = inspect.signature(backbone_class).parameters
    backbone = backbone_class(**{key: value for key, value in config.items() if key in parameters}, **backbone_choices)
    tokenizer = WordTokenizer(**{key: config[key] for key in TOKENIZER_KEYS})
    preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=config["sequence_length"])
    return MultiLabelTextClassifier(backbone, preprocessor=preprocessor, **{key: config[key] for key in HEAD_KEYS})


MULTI_LABEL_DEFAULTS = dict(
    vocabulary_size=20000,
    sequence_length=128,
    num_classes=2,
    class_names=None,
    thresholds=None,
    vocabulary=None,
    lower=True,
    punctuation="split",
    min_count=2,
    embedding_dim=128,
    hidden_dim=64,
    dropout=0.5,
    learning_rate=1e-3,
    naive_bayes_buckets=2**18,
)

# Small enough to build, fit and save in seconds; three labels, as the shared
# tests' tagged texts have (tests/models/test_multi_label.py).
MULTI_LABEL_TEST_CONFIG = dict(
    vocabulary_size=64, sequence_length=12, num_classes=3, embedding_dim=8, hidden_dim=8, learning_rate=1e-2,
    dropout=0.0, naive_bayes_buckets=32,
)


@register_model(task=TASK, family="lstm", default_config=dict(MULTI_LABEL_DEFAULTS, num_layers=1, pooling="max"),
                test_config=MULTI_LABEL_TEST_CONFIG)
def lstm_multi_label_classifier(**config) -> MultiLabelTextClassifier:
    """Embedding + LSTM, max over time, one sigmoid per label."""
    return build_multi_label_classifier(RecurrentBackbone, config, cell="lstm", bidirectional=False)


@register_model(task=TASK, family="cnn", default_config=dict(MULTI_LABEL_DEFAULTS, hidden_dim=100,
                                                             kernel_sizes=(3, 4, 5)),
                test_config=MULTI_LABEL_TEST_CONFIG)
def cnn_multi_label_classifier(**config) -> MultiLabelTextClassifier:
    """Embedding + convolutions of widths 3/4/5, max over time (Kim 2014), one sigmoid per label."""
    return build_multi_label_classifier(CNNBackbone, config)


@register_model(task=TASK, family="transformer",
                default_config=dict(MULTI_LABEL_DEFAULTS, embedding_dim=64, hidden_dim=128, num_layers=2, num_heads=4,
                                    dropout=0.3),
                test_config=dict(MULTI_LABEL_TEST_CONFIG, num_heads=2))
def transformer_multi_label_classifier(**config) -> MultiLabelTextClassifier:
    """Token + position embedding, transformer encoder blocks, mean pooling, one sigmoid per label."""
    return build_multi_label_classifier(TransformerBackbone, config)
