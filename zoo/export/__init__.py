"""Exporters: TF Serving SavedModels and builtin-only LiteRT files, each validated.

One module per target (`saved_model`, `litert`), plus `validate` (parity),
`manifest` and `exporter` (the `export()` that ties them together).
"""

from zoo.export.errors import ExportError
from zoo.export.exporter import ExportResult, export
from zoo.export.litert import QUANTIZATIONS
