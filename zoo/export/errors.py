"""The one error type zoo's exporters raise."""


class ExportError(RuntimeError):
    """An export that cannot be written correctly; nothing was left on disk."""
