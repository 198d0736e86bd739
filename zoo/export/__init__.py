"""Exporters: a TF Serving SavedModel, builtin-only LiteRT files, ONNX files and LiteRT-LM bundles, validated.

Three small registries, each knowing one axis:
- `tasks`: what a task gives the export (format-neutral graphs, validation
  data, parity rules), found from the model's class;
- `architectures`: how a backbone family is traced (fused or unrolled
  loops, int8 float ops, a cached decoding step), found from the backbone's class;
- `formats`: the file formats, each owning every decision about its files.
`export()` (in `exporter`) runs one loop over them; `publish` versions and
renames; `validate` holds the shared parity arithmetic. The errors import
without TensorFlow (the CLI catches them); the rest loads on first use.

Example:
>>> from zoo.export import export
>>> export("saved_models/lstm_classifier", formats=("saved_model", "litert", "onnx"))
"""

from zoo.export.errors import ConversionError, ExportError, ParityError, RuntimeCrash

_LAZY_ATTRIBUTES = {"export": "zoo.export.exporter", "ExportResult": "zoo.export.exporter",
                    "FORMATS": "zoo.export.formats"}


def __getattr__(name):
    import importlib

    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module 'zoo.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
