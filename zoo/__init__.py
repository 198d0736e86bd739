"""zoo: a Keras 3 / TensorFlow model zoo for text models whose exports deploy.

`import zoo` is cheap: it imports neither TensorFlow nor Keras, so
`zoo.runtime` (which runs exported files with NumPy and LiteRT / ONNX
Runtime only) works on a machine without them. The public names below load
on first use; the registry's functions resolve through `zoo.models`, which
imports (and so registers) every model family.

>>> import zoo
>>> zoo.list_models("*gru*")
['bigru_classifier', 'gru_classifier']
"""

import importlib
import os

# zoo's preprocessing and exporters are TensorFlow graphs: pin the backend
# before Keras is first imported (an explicit other choice fails loudly in
# zoo.models).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's default CPU allocator returns big buffers to the OS when they
# are freed, so every training step page-faults and zeroes them again. The
# BFC allocator keeps and reuses them (benchmarks/README.md has the
# measurement). TensorFlow reads this at its first allocation, so it works
# even when TensorFlow was imported first; an explicit setting wins.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access.
_LAZY_ATTRIBUTES = {
    "load_texts": "zoo.data",
    "ModelSpec": "zoo.registry",
    "create_model": "zoo.models",
    "list_models": "zoo.models",
    "model_info": "zoo.models",
    "register_model": "zoo.models",
    "RecurrentBackbone": "zoo.models",
    "TransformerBackbone": "zoo.models",
    "CNNBackbone": "zoo.models",
    "TextClassifier": "zoo.models",
    "TextClassifierPreprocessor": "zoo.models",
    "WordTokenizer": "zoo.preprocessing",
    "ReferenceWordTokenizer": "zoo.preprocessing",
    # Imports zoo.models before loading, so zoo's classes deserialize.
    "load_model": "zoo.saving",
}
__all__ = sorted(_LAZY_ATTRIBUTES)


def __getattr__(name):
    module = _LAZY_ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY_ATTRIBUTES))
