"""zoo: a Keras 3 / TensorFlow model zoo for text models whose exports deploy.

`import zoo` is cheap: it imports neither TensorFlow nor Keras, so
`zoo.runtime` (which runs exported files with NumPy and LiteRT / ONNX
Runtime only) works on a machine without them. The public names below load
on first use.

>>> import zoo
>>> zoo.list_models("*lstm*")
['bilstm_classifier', 'lstm_classifier']
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

# zoo's preprocessing and exporters are TensorFlow graphs: pin the backend
# before Keras is first imported (an explicit other choice fails loudly in
# zoo.registry).
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
    "create_model": "zoo.registry",
    "list_models": "zoo.registry",
    "model_info": "zoo.registry",
    "register_model": "zoo.registry",
    "RecurrentBackbone": "zoo.models",
    "TransformerBackbone": "zoo.models",
    "CNNBackbone": "zoo.models",
    "TextClassifier": "zoo.models",
    "TextClassifierPreprocessor": "zoo.models",
    "WordTokenizer": "zoo.preprocessing",
    "ReferenceWordTokenizer": "zoo.preprocessing",
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


# `keras.saving.load_model` finds custom classes only once their modules
# have run `register_keras_serializable`. Importing zoo's models here would
# import TensorFlow; instead they are registered as soon as Keras is loaded
# (right away if it already is), so `import zoo` followed by
# `keras.saving.load_model("model.keras")` still works. Importing TensorFlow
# imports Keras, keras-hub imports both, and zoo's modules import each other:
# registration waits until none of them is half-initialized.
_WATCHED = ("tensorflow", "keras", "keras_hub")


def _watched(name):
    return name in _WATCHED or name.startswith("zoo.")


def _initializing(name, finishing):
    return name != finishing and getattr(getattr(sys.modules[name], "__spec__", None), "_initializing", False)


def _register_models(finishing=None):
    if "keras" not in sys.modules or "zoo.models" in sys.modules:
        return
    if any(_watched(name) and _initializing(name, finishing) for name in list(sys.modules)):
        return
    try:
        importlib.import_module("zoo.models")
    except ModuleNotFoundError as error:
        if error.name not in ("keras_hub", "tensorflow_text"):  # a runtime-only install lacks them
            raise


class _RegisterModelsAfterKeras(importlib.abc.MetaPathFinder):
    """Calls `_register_models` each time Keras, TensorFlow, keras-hub or a zoo module finishes loading."""

    def __init__(self):
        self._finding = False

    def find_spec(self, fullname, path, target=None):
        if self._finding or "zoo.models" in sys.modules or not _watched(fullname):
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_models(finishing=fullname)

        spec.loader.exec_module = exec_then_register
        return spec


_register_models()
if not any(isinstance(finder, _RegisterModelsAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterModelsAfterKeras())
