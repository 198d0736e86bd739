"""`TextClassifier`: the task every zoo classifier family shares.

A backbone (token ids to one feature vector per text) plus a dropout and a
softmax head, with a `TextClassifierPreprocessor` attached so `fit`,
`evaluate` and `predict` take raw strings. Saved as one `.keras` file.

Optionally wide and deep: a Naive Bayes n-gram branch over the same token ids
adds its per-class scores to the head's logits (NBSVM's strong linear
baseline, Wang & Manning 2012, with the network learning what it misses).
"""

import contextlib

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from zoo.layers import NaiveBayesNgramLogits
from zoo.models.text_classifier_preprocessor import TextClassifierPreprocessor
from zoo.preprocessing import WordTokenizer


# What `TextClassifier.part_logits` scores: the whole model, its Naive Bayes branch, its network.
PARTS = ("whole", "branch", "deep")


class WordClassifier(keras_hub.models.TextClassifier):
    """What zoo's classifiers over its word tokenizer share (single-label `TextClassifier`, multi-label
    `MultiLabelTextClassifier`): raw strings in through a `TextClassifierPreprocessor`, an optional Naive
    Bayes n-gram branch (`naive_bayes`) scored leave-one-out in training, the saved optimizer restored on
    load, and one clear error for each misuse. A subclass builds its layers, `head` and config.
    """

    def compile_from_config(self, config):
        # Keras skips this for models with a custom compile(); restoring the
        # saved optimizer is what lets a reloaded model resume training.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def training_context(self, labels):
        """The block a training forward pass runs in: the Naive Bayes branch scores each example
        leave-one-out (see `NaiveBayesNgramLogits.leave_out`). `zoo.distributed`'s step enters it too."""
        if self.naive_bayes is None:
            return contextlib.nullcontext()
        return self.naive_bayes.leave_out(labels)

    def train_step(self, data):
        _, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        with self.training_context(labels):
            return super().train_step(data)

    @property
    def sequence_length(self):
        """The window the model reads: its preprocessor's length (the backbone takes any); None without one."""
        return None if self.preprocessor is None else self.preprocessor.sequence_length

    def fit(self, *args, **kwargs):
        # Unadapted, every word is the OOV id: training would run and learn nothing.
        if self.preprocessor is not None and not self.preprocessor.tokenizer.is_adapted:
            raise ValueError(f"{self.name}: the tokenizer has no vocabulary yet; call model.adapt(texts, labels) "
                             "on the training texts before fit()")
        return super().fit(*args, **kwargs)

    def predict(self, x, batch_size=None, *args, **kwargs):
        """Keras `predict`; a bare string is an error and an empty batch gives `[0, num_classes]`."""
        self._check_not_one_string(x, "predict")
        if isinstance(x, (list, tuple)) and not x:
            return np.zeros((0, self.num_classes), np.float32)
        if isinstance(x, (list, tuple)) and self.preprocessor is not None:
            x, batch_size = tf.data.Dataset.from_tensor_slices(self.string_batch(x)).batch(batch_size or 32), None
        return super().predict(x, batch_size, *args, **kwargs)

    def predict_documents(self, texts, max_windows=16, batch_size=256):
        """Probabilities `[n, num_classes]` reading each text whole: its token sequence cut into windows of
        `sequence_length` spread evenly from the first token to the last (at most `max_windows`), each
        window classified, their probabilities averaged (`zoo.runtime.documents` states the rule). A text
        that fits the window gets `predict`'s result; a longer one costs one prediction per window. The
        exported SavedModel (`serving_documents`) and `zoo.runtime`'s runners give the same numbers."""
        from zoo.models.documents import predict_documents

        self._check_not_one_string(texts, "predict_documents")
        return predict_documents(self, texts, max_windows=max_windows, batch_size=batch_size)

    @staticmethod
    def string_batch(texts):
        """Texts as one `tf.string` tensor. Keras and keras-hub would stack a Python list into a fixed-width
        NumPy array first: rows x the longest text x 4 bytes (4.6 GB for one 6 MB text among 200 short ones)."""
        return tf.constant(list(texts), dtype=tf.string)

    def _check_not_one_string(self, texts, method):
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"{self.name}.{method}() takes a list of strings, not one string")


@keras.saving.register_keras_serializable(package="zoo")
class TextClassifier(WordClassifier):
    """Classify raw strings into `num_classes` named classes.

    Args:
        backbone: a `keras_hub.models.Backbone` mapping `token_ids`
            `[batch, length]` to features `[batch, hidden]`.
        num_classes: int. Number of classes.
        preprocessor: `TextClassifierPreprocessor` or None (then the model
            takes token ids).
        class_names: list of str, one per class; defaults to "0", "1", ...
        dropout: float. Dropout before the output layer.
        learning_rate: float. Adam's learning rate for the default `compile`.
        naive_bayes_buckets: int. Hashed bigram slots of the Naive Bayes
            branch (unigrams use the vocabulary ids); 0 leaves the branch
            out. The branch is fitted by `adapt(texts, labels)`.

    Example:
    >>> classifier = zoo.create_model("lstm_classifier", vocabulary_size=100)
    >>> classifier.adapt(["a good film", "a bad film"])
    >>> classifier.predict(["a good film"]).shape
    (1, 2)
    """

    def __init__(
        self,
        backbone,
        num_classes=2,
        preprocessor=None,
        class_names=None,
        dropout=0.0,
        learning_rate=1e-3,
        naive_bayes_buckets=0,
        **kwargs,
    ):
        class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        if len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes={num_classes}"
            )
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        if naive_bayes_buckets:
            self.output_dense = keras.layers.Dense(num_classes, dtype="float32", name="logits")
            self.naive_bayes = NaiveBayesNgramLogits(
                backbone.vocabulary_size, num_classes, naive_bayes_buckets, dtype="float32", name="naive_bayes"
            )
            self.wide_and_deep = keras.layers.Add(dtype="float32", name="wide_and_deep")
            self.output_activation = keras.layers.Activation("softmax", dtype="float32", name="probabilities")
        else:
            self.output_dense = keras.layers.Dense(
                num_classes, activation="softmax", dtype="float32", name="probabilities"
            )
            self.naive_bayes = None

        # === Functional Model ===
        token_ids = backbone.input
        outputs = self.head(backbone(token_ids), token_ids)
        self.learning_rate = float(learning_rate)
        super().__init__(inputs=token_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.class_names = class_names
        self.dropout = dropout
        self.naive_bayes_buckets = int(naive_bayes_buckets)
        self.activation = "softmax"

    def head(self, features, token_ids):
        """The model's output from the backbone's `features` `[batch, hidden]`
        and the `token_ids` the Naive Bayes branch reads: dropout (the
        identity outside training), the output layer, the Naive Bayes scores
        added, the softmax. The model is built through it, and a rewritten
        forward pass (an export's) calls it after its own backbone.
        """
        outputs = self.output_dense(self.output_dropout(features))
        if self.naive_bayes is not None:
            outputs = self.output_activation(self.wide_and_deep([outputs, self.naive_bayes(token_ids)]))
        return outputs

    def part_logits(self, texts, part="whole", batch_size=256):
        """Logits `[n, num_classes]` of one part of the model for raw `texts`: `"whole"` (what `predict`'s
        softmax reads), `"branch"` (the Naive Bayes branch alone) or `"deep"` (the backbone and output
        layer alone, the branch left out). Whole is branch plus deep. Inference mode (no dropout)."""
        self._check_not_one_string(texts, "part_logits")
        if part not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        if self.naive_bayes is None and part != "whole":
            raise ValueError(f"{self.name} has no Naive Bayes branch (naive_bayes_buckets=0): only part='whole' "
                             f"scores it, got {part!r}")
        texts = list(texts)
        batches = []
        for start in range(0, len(texts), batch_size):
            token_ids = self.preprocessor(self.string_batch(texts[start : start + batch_size]))
            if part == "branch":
                logits = self.naive_bayes(token_ids, training=False)
            else:
                # The output layer's affine map without its activation (a model without the branch has softmax there).
                features = keras.ops.cast(self.backbone(token_ids, training=False), "float32")
                logits = keras.ops.matmul(features, self.output_dense.kernel) + self.output_dense.bias
                if part == "whole" and self.naive_bayes is not None:
                    logits = logits + self.naive_bayes(token_ids, training=False)
            batches.append(keras.ops.convert_to_numpy(logits))
        return np.concatenate(batches) if batches else np.zeros((0, self.num_classes), np.float32)

    def part_accuracies(self, texts, labels):
        """Accuracy of each part (`part_logits`) on `texts` with int `labels`: `{"whole", "branch", "deep"}`,
        or `{"whole"}` for a model without a Naive Bayes branch. Tells whether the network learned anything
        beside the branch: a deep part at chance, or a whole no better than its branch, means it did not."""
        labels = np.asarray(labels)
        parts = PARTS if self.naive_bayes is not None else ("whole",)
        return {part: float(np.mean(np.argmax(self.part_logits(texts, part), axis=-1) == labels)) for part in parts}

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        # keras-hub's default (Adam 5e-5) is for fine-tuning pretrained
        # transformers; zoo's classifiers train from scratch.
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(self.learning_rate)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def adapt(self, texts, labels=None):
        """Learn the tokenizer's vocabulary from Python strings.

        With `labels` (int class ids, one per text) also fit the Naive Bayes
        branch, if the model has one; without, that branch scores zero.
        """
        texts = list(texts)
        self.preprocessor.tokenizer.adapt(texts)
        if labels is not None and self.naive_bayes is not None:
            self.naive_bayes.fit(keras.ops.convert_to_numpy(self.preprocessor(self.string_batch(texts))), labels)

    def predict_labels(self, texts, batch_size=64):
        """Return `(class_name, probability)` for each text."""
        self._check_not_one_string(texts, "predict_labels")
        probabilities = self.predict(list(texts), batch_size=batch_size, verbose=0)
        best = np.argmax(probabilities, axis=-1)
        return [(self.class_names[i], float(p[i])) for i, p in zip(best, probabilities)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "class_names": self.class_names,
                "dropout": self.dropout,
                "learning_rate": self.learning_rate,
                "naive_bayes_buckets": self.naive_bayes_buckets,
            }
        )
        return config


# The task's defaults, shared by every classifier family (each adds its own
# architecture keys and dropout), tuned on rt-polarity (10,662 short reviews,
# 90/10 split): see README.
CLASSIFIER_DEFAULTS = dict(
    vocabulary_size=20000,
    sequence_length=64,
    num_classes=2,
    class_names=None,
    vocabulary=None,
    lower=True,
    punctuation="split",
    # Words seen once in training get an embedding (and a Naive Bayes
    # weight) fitted to a single example: drop them to the OOV id.
    min_count=2,
    # Slower than Adam's usual 1e-3: next to the Naive Bayes branch the
    # network overfits within two epochs at 1e-3; it only has to learn what
    # that branch misses.
    learning_rate=3e-4,
    # The network and the branch train together from the first step, with no schedule: on rt-polarity
    # (seeded splits 1337, 42, 7) zeroing the branch for 20-50% of the training examples, or training
    # the network alone for its first 3 epochs, made the network alone better (cnn by 4-13 points) but
    # the whole model no more accurate than this plain sum (at 20%: cnn the same, lstm 0.2 points worse
    # on average; up to 1.5 points worse with more dropout or the warm-up).
    naive_bayes_buckets=2**18,
)

# What the shared tests (tests/helpers.py) build every classifier family with:
# small enough to fit and export in seconds.
CLASSIFIER_TEST_CONFIG = dict(
    vocabulary_size=64, sequence_length=12, embedding_dim=8, hidden_dim=8, learning_rate=1e-2, dropout=0.0,
    naive_bayes_buckets=32,
)


def build_text_classifier(
    backbone,
    *,
    sequence_length,
    vocabulary_size,
    num_classes,
    class_names=None,
    vocabulary=None,
    lower=True,
    punctuation="split",
    min_count=1,
    dropout=0.0,
    learning_rate=1e-3,
    naive_bayes_buckets=0,
):
    """Attach the shared preprocessing and a head to `backbone`."""
    tokenizer = WordTokenizer(
        vocabulary=vocabulary,
        vocabulary_size=vocabulary_size,
        lower=lower,
        punctuation=punctuation,
        min_count=min_count,
    )
    preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    return TextClassifier(
        backbone,
        num_classes=num_classes,
        preprocessor=preprocessor,
        class_names=class_names,
        dropout=dropout,
        learning_rate=learning_rate,
        naive_bayes_buckets=naive_bayes_buckets,
    )
