"""The errors zoo's exporters raise. Each means nothing was published."""


class ExportError(RuntimeError):
    """An export that cannot be written correctly; nothing was left on disk."""


class ConversionError(ExportError):
    """A format's converter failed, or its file would need ops the target runtime lacks."""


class ParityError(ExportError):
    """An artifact's outputs differ from Keras beyond what its variant allows."""


class RuntimeCrash(ExportError):
    """The runtime crashed on, or refused to run, a written file."""
