"""Run a written runtime file on validation inputs in a child process (`zoo.runtime.validation_probe`).

A crashing kernel then fails one artifact instead of killing the export.
"""

import pathlib
import signal
import subprocess
import sys

import numpy as np

from zoo.export.errors import RuntimeCrash
from zoo.runtime import validation_probe


def run_in_child(path, inputs, runtimes, scratch):
    """`{runtime: {output: array}}` for `path` run on each of `runtimes`.

    Args:
        inputs: `{name: array}` as `validation_probe` expects for the file's task.
    Raises:
        RuntimeCrash: the runtime refused the file or its process died.
    """
    inputs_file, outputs_file = pathlib.Path(scratch) / "probe_inputs.npz", pathlib.Path(scratch) / "probe_outputs.npz"
    np.savez(inputs_file, **inputs)
    outputs_file.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, "-m", validation_probe.__name__, str(path), str(inputs_file), str(outputs_file), *runtimes],
        capture_output=True, text=True,
    )
    last = next((line for line in reversed(completed.stderr.splitlines()) if line.strip()), "")
    if completed.returncode == validation_probe.RUNTIME_FAILED:
        raise RuntimeCrash(f"the {last[:300]} (on validation inputs)")
    if completed.returncode != 0:
        how = (f"signal {signal.Signals(-completed.returncode).name}" if completed.returncode < 0
               else f"exit status {completed.returncode}")
        raise RuntimeCrash(f"the runtime crashed ({how}) on validation inputs: {last[:200]}")
    outputs = {runtime: {} for runtime in runtimes}
    with np.load(outputs_file) as loaded:
        for key in loaded.files:
            runtime, name = key.split("/", 1)
            outputs[runtime][name] = loaded[key]
    return outputs
