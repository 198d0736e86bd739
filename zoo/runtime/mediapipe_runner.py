"""`MediaPipeTextClassifier`: run a zoo LiteRT classifier file in MediaPipe Tasks' TextClassifier.

The file must carry TFLite model metadata (`zoo.export.tflite_metadata`):
MediaPipe tokenizes the raw text itself with the regex tokenizer and
vocabulary stored in the file, and names the classes from its label file;
no sidecar is read. MediaPipe returns the model's outputs as they are (zoo's
softmax probabilities, no rescaling), one text per call (batch 1).

Needs the `mediapipe` package (Tasks C API, 0.10.x / 1.x). No TensorFlow:
MediaPipe's Python package imports TensorFlow whenever it is installed
(`tasks/python/core/optional_dependencies.py` wants TF's doc decorators,
and falls back to a no-op without it), so unless TensorFlow is already
loaded, that import is refused while MediaPipe loads.

MediaPipe's tokenizer does not lowercase and drops the delimiter matches, so
its ids are zoo's where the tokenizer's rules allow it
(`zoo.preprocessing.reference.mediapipe_exact`), e.g. for lowercase text
without punctuation.

Example:
>>> classifier = MediaPipeTextClassifier("saved_models/lstm_classifier/1/litert/model.tflite")
>>> classifier.predict_labels(["a gorgeous witty seductive movie"])
[('pos', 0.91)]
"""

import atexit
import contextlib
import importlib.abc
import os
import sys
import threading
import weakref

import numpy as np

from zoo import extras

# Every category comes back: no top-k cut, no score cut (MediaPipe's Python
# API turns score_threshold=None into 0.0, which would drop negative scores).
_ALL_RESULTS = -1
_NO_THRESHOLD = float(-np.finfo(np.float32).max)
# Classifiers still open at exit are closed before modules are torn down
# (MediaPipe's own __del__ fails once its ctypes bindings are gone).
_OPEN = weakref.WeakSet()


@atexit.register
def _close_open_classifiers():
    for classifier in list(_OPEN):
        classifier.close()


class _RefuseTensorFlow(importlib.abc.MetaPathFinder):
    """A finder that makes `import tensorflow` fail, as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (zoo.runtime loads MediaPipe without TensorFlow)",
                                      name=name)
        return None


@contextlib.contextmanager
def _without_tensorflow():
    if "tensorflow" in sys.modules:  # already paid for: nothing to avoid
        yield
        return
    finder = _RefuseTensorFlow()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _text_classifier_module():
    with _without_tensorflow():
        extras.require("mediapipe", "MediaPipe's TextClassifier")
        from mediapipe.tasks.python.core import base_options
        from mediapipe.tasks.python.text import text_classifier
    return base_options, text_classifier


class MediaPipeTextClassifier:
    """Classify raw strings with MediaPipe's TextClassifier on a zoo `.tflite` file with metadata.

    Args:
        model: path to the `.tflite` file, or its bytes.
        delegate: "cpu" (default) or "gpu" (MediaPipe's BaseOptions.Delegate).

    Attributes:
        class_names: label of each class index (from the file's label file).

    Safe to share between threads: one classification at a time runs in
    MediaPipe's task (its graph is not documented as re-entrant), under a lock.
    """

    def __init__(self, model, delegate="cpu"):
        base_options, text_classifier = _text_classifier_module()
        if isinstance(model, (bytes, bytearray, memoryview)):
            asset = dict(model_asset_buffer=bytes(model))
            self.model_path = None
        else:
            self.model_path = os.fspath(model)
            if not os.path.isfile(self.model_path):
                raise FileNotFoundError(f"{self.model_path}: no such model file")
            asset = dict(model_asset_path=self.model_path)
        delegate = base_options.BaseOptions.Delegate[delegate.upper()]
        options = text_classifier.TextClassifierOptions(
            base_options=base_options.BaseOptions(**asset, delegate=delegate),
            max_results=_ALL_RESULTS,
            score_threshold=_NO_THRESHOLD,
        )
        self._classifier = text_classifier.TextClassifier.create_from_options(options)
        self._lock = threading.Lock()
        _OPEN.add(self)
        # The class count and names, by index, from one classification.
        categories = self._categories("")
        indices = sorted(category.index for category in categories)
        if indices != list(range(len(indices))):
            raise ValueError(f"MediaPipe returned class indices {indices}; expected 0..{len(indices) - 1}")
        names = {category.index: category.category_name for category in categories}
        self.class_names = [names[index] for index in indices]

    def _categories(self, text):
        with self._lock:
            if self._classifier is None:
                raise ValueError(f"{self.model_path or 'model'}: this MediaPipe classifier is closed")
            result = self._classifier.classify(text)
        (head,) = result.classifications  # zoo's classifiers have one output
        return head.categories

    def scores(self, texts):
        """Scores `[len(texts), num_classes]` (float32), columns in class-index order."""
        if isinstance(texts, str):
            raise TypeError("scores() takes a list of strings, not one string")
        texts = list(texts)
        scores = np.zeros((len(texts), len(self.class_names)), np.float32)
        for row, text in enumerate(texts):
            # MediaPipe ranks categories by score; put them back by index.
            for category in self._categories(text):
                scores[row, category.index] = category.score
        return scores

    def predict_labels(self, texts):
        """`(class_name, score)` for each text."""
        scores = self.scores(texts)
        best = scores.argmax(axis=-1)
        return [(self.class_names[i], float(row[i])) for i, row in zip(best, scores)]

    def close(self):
        with self._lock:
            if self._classifier is not None:
                self._classifier.close()
                self._classifier = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
