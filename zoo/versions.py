"""The versions of Python and of the libraries zoo runs on: one collector for reports, manifests and benchmarks.

Read from the installed distributions' metadata, so nothing is imported (a
report written by a TensorFlow-free process lists TensorFlow's version too,
or None where it is not installed).
"""

import importlib.metadata
import platform

# The stack every zoo report names; `library_versions(*more)` adds others.
LIBRARIES = ("tensorflow", "keras", "keras-hub", "tensorflow-text", "numpy", "ai-edge-litert", "onnxruntime",
             "tf2onnx", "onnx")


def library_versions(*more):
    """`{"python": ..., "<distribution>": version or None}` for `LIBRARIES` and `more` (names with "_")."""
    versions = {"python": platform.python_version()}
    for distribution in LIBRARIES + more:
        try:
            versions[distribution.replace("-", "_")] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution.replace("-", "_")] = None
    return versions
