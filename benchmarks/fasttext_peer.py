"""fastText (supervised, word bigrams) as a peer: the strong, fast linear text classifier users reach for.

One module serves the accuracy, speed and bulk-labelling benchmarks. The
settings are the fastText tutorial's for small sentiment data
(`-lr 1.0 -epoch 25 -wordNgrams 2`), on text lower-cased and split into
words and punctuation the way fastText's own examples preprocess it.
Trained on one thread, so a seed gives the same model every run.

Needs `pip install fasttext-numpy2-wheel` (in the `peers` extra).
"""

import os
import re
import tempfile

import numpy as np

SETTINGS = {"lr": 1.0, "epoch": 25, "wordNgrams": 2, "dim": 100, "minCount": 1, "loss": "softmax"}
_TOKENS = re.compile(r"\w+|[^\w\s]")


def available():
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return False
    return True


def normalize(text):
    """One line of lower-cased words and punctuation (fastText reads a text per line)."""
    return " ".join(_TOKENS.findall(text.lower()))


def train(texts, labels, *, seed=1337, threads=1, **settings):
    """A fastText supervised model of `texts` with integer `labels`."""
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as file:
        for text, label in zip(texts, labels):
            file.write(f"__label__{int(label)} {normalize(text)}\n")
    try:
        return fasttext.train_supervised(input=file.name, seed=seed, thread=threads, verbose=0,
                                         **{**SETTINGS, **settings})
    finally:
        os.unlink(file.name)


def predict(model, texts):
    """Class ids, one per text."""
    labels, _ = model.predict([normalize(text) for text in texts], k=1)
    return np.array([int(label[0][len("__label__"):]) for label in labels], np.int64)


def accuracy(train_split, validation_split, *, seed=1337):
    """`(accuracy, model)` of fastText trained on one `TextDataset` split and scored on the other."""
    model = train(train_split.texts, train_split.labels, seed=seed)
    return float(np.mean(predict(model, validation_split.texts) == np.asarray(validation_split.labels))), model
