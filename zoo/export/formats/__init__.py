"""Export formats as plug-ins, one module each, all read from `FORMATS`.

A format owns every decision about its files and knows no task by name: it
asks the model's export task for graphs and descriptions in format-neutral
terms (`zoo.export.tasks.base.ExportTask`). A format module defines:

    NAME            what `formats=` / `--format` and the report call it
    DIRECTORY       its folder inside the version ("" = the version folder itself)
    SUFFIX          its files' suffix ("" for a folder)
    VARIANTS        {variant: what it is}: the variants it can write besides float32
    EXACT_VARIANTS  variants whose outputs must reproduce Keras as float32 does
    NEEDS           the optional modules (`zoo.extras.MODULE_EXTRAS`) it cannot write or
                    validate a file without; without one the format is not exported
    serves(task, model) -> bool
        whether it can write `model` (of export task `task`)
    write(model, path, variant="float32", *, task=None, options=None, validation=None,
          name=None, version=None, scratch=None) -> artifact
        write the file (and its sidecar) at `path`; `artifact` is its manifest
        entry (format, path, variant, signatures, bytes, ...). Callable on its
        own: everything but `model` and `path` has a default.
    optional_runtimes(path) -> {runtime: module}
        the runtimes the written file is also validated on where their
        optional module is installed (the others are reported as skipped)
    run(path, variant, task, validation, scratch, optional_runtimes=()) -> {runtime: {output: array}}
        run the written file on the validation set on every runtime it must
        work on, and on the `optional_runtimes` given (installed ones); a
        runtime that refuses or crashes raises `RuntimeCrash`.

The export loop, the CLI, reports, tests and benchmarks go through this registry.
"""

import difflib

from zoo.export.errors import ExportError
from zoo.export.formats import litert, litert_lm, onnx, saved_model
from zoo.runtime.sidecar import REFERENCE_VARIANT, artifact_filename

FORMATS = {module.NAME: module for module in (saved_model, litert, onnx, litert_lm)}


def get_format(name):
    try:
        return FORMATS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(FORMATS), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExportError(f"formats: unknown {name!r}; expected any of {list(FORMATS)}{hint}") from None


def artifact_key(format_module, variant=REFERENCE_VARIANT):
    """The file's name in the report and manifest: "saved_model", "litert float32", "onnx dynamic_int8"."""
    return format_module.NAME if not format_module.SUFFIX else f"{format_module.NAME} {variant}"


def relative_path(format_module, variant=REFERENCE_VARIANT):
    """Where the file goes inside a version folder."""
    if not format_module.SUFFIX:
        return format_module.DIRECTORY or "."
    return f"{format_module.DIRECTORY}/{artifact_filename(variant, format_module.SUFFIX)}"


def formats_for_task(task_name):
    """The format names that can export models of a registry task (some also depend on the architecture)."""
    from zoo.export.tasks import task_named

    task = task_named(task_name)
    return tuple(name for name, module in FORMATS.items() if module.serves(task, None))
