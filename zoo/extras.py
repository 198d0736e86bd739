"""Which pip extra brings each optional module zoo imports, and the one-line error when one is missing.

The core install (`pip install zoo`) trains, exports SavedModels and LiteRT
files and runs them; every other runtime is an extra (setup.py's
`extras_require`, kept in step with `MODULE_EXTRAS` by tests/test_extras.py).
Code that imports an optional module goes through `require`, so a missing one
says what to install in one line instead of a `ModuleNotFoundError` trace;
`installed` answers without importing (the exporter decides what to validate
on with it).

Example (on an install without the onnx extra):
>>> from zoo import extras
>>> onnxruntime = extras.require("onnxruntime", "model.onnx")
Traceback (most recent call last):
zoo.extras.MissingExtraError: model.onnx needs ONNX Runtime: pip install 'zoo[onnx]'
"""

import dataclasses
import importlib
import importlib.util


@dataclasses.dataclass(frozen=True)
class OptionalModule:
    extra: str  # the extra of setup.py's extras_require that installs it
    what: str  # how a message names it


MODULE_EXTRAS = {
    "tf2onnx": OptionalModule("onnx", "tf2onnx"),
    "onnx": OptionalModule("onnx", "the onnx package"),
    "onnxruntime": OptionalModule("onnx", "ONNX Runtime"),
    "mediapipe": OptionalModule("mediapipe", "MediaPipe"),
    "litert_lm": OptionalModule("litertlm", "the LiteRT-LM engine"),
    "litert_lm_builder": OptionalModule("litertlm", "the LiteRT-LM builder"),
    "apache_beam": OptionalModule("beam", "Apache Beam"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional module is not installed; the message names the extra that brings it.

    A `ModuleNotFoundError`, so code that already tells "not installed" apart
    that way keeps working.
    """


def installed(module):
    """Whether `module` can be imported, without importing it (a module set to None in sys.modules is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module):
    """`pip install 'zoo[onnx]'`: what brings `module` (the zoo-runtime distribution has its own extras)."""
    return f"pip install '{_distribution()}[{MODULE_EXTRAS[module].extra}]'"


def missing_message(module, needed_by):
    """`"<needed_by> needs ONNX Runtime: pip install 'zoo[onnx]'"`."""
    return f"{needed_by} needs {MODULE_EXTRAS[module].what}: {install_hint(module)}"


def first_missing(modules):
    """The first of `modules` that is not installed, or None."""
    return next((module for module in modules if not installed(module)), None)


def require(module, needed_by):
    """Import and return `module`, or raise `MissingExtraError` naming its extra.

    Args:
        module: a key of `MODULE_EXTRAS` (a top-level module name).
        needed_by: what needs it, the sentence's subject ("model.onnx",
            "the onnx format").
    """
    if module not in MODULE_EXTRAS:
        raise KeyError(f"{module!r} is not an optional module of zoo; expected one of {sorted(MODULE_EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # Only the module itself being absent is the extra's business; a dependency it lacks is its own error.
        if error.name != module:
            raise
        raise MissingExtraError(missing_message(module, needed_by), name=module) from None


def _distribution():
    # zoo-runtime (runtime/setup.py) ships zoo.runtime without zoo.export: its users install its extras.
    return "zoo" if importlib.util.find_spec("zoo.export") is not None else "zoo-runtime"
