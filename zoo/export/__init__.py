"""Exporters: a TF Serving SavedModel, builtin-only LiteRT files and ONNX files, each validated.

`export()` (in `exporter`) runs one task-free loop over the format plug-ins
in `formats` with the model's export config from `tasks`
(`text_classifier_export`, `causal_lm_export`); `publish` versions and
renames; `validate` holds the parity rules. The errors import without
TensorFlow (the CLI catches them); the rest loads on first use.

Example:
>>> from zoo.export import export
>>> export("saved_models/lstm_classifier", formats=("saved_model", "tflite", "onnx"))
"""

from zoo.export.errors import ConversionError, ExportError, ParityError, RuntimeCrash

_LAZY_ATTRIBUTES = {"export": "zoo.export.exporter", "ExportResult": "zoo.export.exporter",
                    "FORMATS": "zoo.export.formats", "QUANTIZATIONS": "zoo.export.formats"}


def __getattr__(name):
    import importlib

    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module 'zoo.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
