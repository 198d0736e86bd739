"""Run an exported file on validation inputs in its own process.

    python -m zoo.runtime.validation_probe MODEL INPUTS.npz OUTPUTS.npz RUNTIME [RUNTIME ...]

A faulty kernel in a quantized file can abort the engine (a C++ CHECK, not a
Python exception), which would take the exporting process down with it.
`zoo.export` runs every runtime file here instead, once per runtime, so such
a file is reported and left out, never written as if it worked. It imports
zoo.runtime only (no TensorFlow), so it starts fast, and it runs the files
exactly as an app would: through the runner registered for the file's task
and suffix (`zoo.runtime.registry`), whose `probe` says what it reads from
the inputs and what it returns.

A file that fails on a runtime ends the run with exit status
`RUNTIME_FAILED`, the message (naming the runtime) on the last stderr line.
"""

import pathlib
import sys

import numpy as np

from zoo.runtime import backends, registry
from zoo.runtime.sidecar import read_sidecar

RUNTIME_FAILED = 3


def main(model_path, inputs_file, outputs_file, *runtimes):
    suffix = pathlib.Path(model_path).suffix
    task = registry.self_contained_task(suffix) or read_sidecar(model_path)["task"]
    runner = registry.runner_class(task, suffix)
    with np.load(inputs_file) as loaded:
        inputs = dict(loaded)
    outputs = {}
    for runtime in runtimes:
        try:
            results = runner.probe(model_path, runtime, inputs)
        except (RuntimeError, ValueError) as error:
            print(f"{runtime} runtime failed: {backends.error_message(error)}", file=sys.stderr)
            sys.exit(RUNTIME_FAILED)
        outputs.update({f"{runtime}/{key}": value for key, value in results.items()})
    np.savez(outputs_file, **outputs)


if __name__ == "__main__":
    main(*sys.argv[1:])
