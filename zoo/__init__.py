"""zoo: a Keras 3 / TensorFlow model zoo for text models whose exports deploy.

>>> import zoo
>>> zoo.list_models("*lstm*")
['bilstm_classifier', 'lstm_classifier']
"""

import importlib
import os

# zoo's preprocessing and exporters are TensorFlow graphs: pin the backend
# before Keras is first imported (an explicit other choice fails loudly in
# zoo.registry).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

# Public names, imported on first use so `zoo --help` and `import zoo.data`
# do not pay for TensorFlow's start-up.
_EXPORTS = {
    "ModelSpec": "zoo.registry",
    "create_model": "zoo.registry",
    "list_models": "zoo.registry",
    "model_info": "zoo.registry",
    "register_model": "zoo.registry",
    "TextClassifier": "zoo.models",
    "TextClassifierPreprocessor": "zoo.models",
    "RecurrentBackbone": "zoo.models",
    "TransformerBackbone": "zoo.models",
    "WordTokenizer": "zoo.preprocessing",
    "ReferenceWordTokenizer": "zoo.preprocessing",
    "load_texts": "zoo.data",
}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
