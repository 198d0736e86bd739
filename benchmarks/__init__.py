"""zoo benchmarks: measured side by side with a peer in one run (see README.md here)."""

import json
import os
import pathlib
import subprocess
import sys

CHECKOUT = pathlib.Path(__file__).resolve().parent.parent


def run_child(module, *arguments, timeout=3600, env=None):
    """Run `python -m <module> <arguments>` in a fresh process; its last stdout line, parsed as JSON.

    Every side or runtime that must not share this process's thread pools runs so. The child finds this
    checkout's `benchmarks` package whatever the current folder (`zoo bench` may run from anywhere).

    Raises:
        RuntimeError: the child failed; the message names the module and ends with its last stderr lines.
    """
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), environment.get("PYTHONPATH")]))
    finished = subprocess.run([sys.executable, "-m", module, *map(str, arguments)], capture_output=True, text=True,
                              timeout=timeout, env=environment)
    if finished.returncode:
        raise RuntimeError(f"{module} exited {finished.returncode}: {finished.stderr.strip()[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])
