"""Export formats as plug-ins, one module each, all read from `FORMATS`.

A format module defines:

    NAME           what `formats=` / `--format` call it
    DIRECTORY      its folder inside the version ("" = the version folder itself)
    TASKS          the export tasks it supports ("text-classification", "causal-lm")
    QUANTIZATIONS  the variants it can write besides float32 (names from `QUANTIZATIONS`)
    artifact_key(variant) -> its key in the report and manifest ("litert int8")
    write(job, variant) -> (path, artifact)
        write the file (and its sidecar) under `job.staging`; `artifact` is its
        manifest entry: format, path, quantization, signatures, bytes, ...
    run(job, path, variant) -> {runtime: {output: array}}
        run the written file on `job`'s validation inputs, on every runtime
        it must work on; a runtime that refuses or crashes raises
        `RuntimeCrash`.

The export loop, the CLI, reports and tests go through this registry only.
"""

from zoo.export.errors import ExportError
from zoo.export.formats import litert, litertlm, onnx, saved_model

# Every variant name besides the float32 reference, across formats. "batch32" is float32 weights with a
# static batch of 32 (LiteRT's batch-1 files take a batch of 32 as 32 invokes): for servers, beside the
# batch-1 phone file.
QUANTIZATIONS = ("float16", "dynamic_int8", "int8", "batch32")

FORMATS = {module.NAME: module for module in (saved_model, litert, onnx, litertlm)}


def get_format(name):
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"formats: unknown {name!r}; expected any of {list(FORMATS)}") from None


def formats_for_task(task):
    """The registered format names that can export `task`."""
    return tuple(name for name, module in FORMATS.items() if task in module.TASKS)
