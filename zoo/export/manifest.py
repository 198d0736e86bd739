"""`manifest.json`: what one exported version is, in one file.

Model name, task fields (labels, tokenizer hashes, shape), config, every
artifact with its signatures, ops and size, library versions, parity
figures and the sha256 of every file.
"""

import json
import platform

import keras

MANIFEST_FILENAME = "manifest.json"
MANIFEST_FORMAT = "zoo.export.manifest/1"


def library_versions():
    import ai_edge_litert
    import keras_hub
    import numpy
    import tensorflow as tf

    versions = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "numpy": numpy.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", _distribution_version("ai-edge-litert")),
    }
    for distribution in ("onnxruntime", "tf2onnx"):
        versions[distribution.replace("-", "_")] = _distribution_version(distribution)
    return versions


def _distribution_version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def build_manifest(job, artifacts, validation, files):
    """The manifest dict (JSON-serializable).

    Args:
        artifacts: `{artifact key: {...format, path, signatures, ops}}`.
        validation: `{artifact key: parity figures}`.
        files: `{relative path: sha256}` of every file in the version.
    """
    return {
        "format": MANIFEST_FORMAT,
        "name": job.name,
        "version": job.version,
        **job.task.manifest_fields(job),
        "config": json.loads(json.dumps(keras.saving.serialize_keras_object(job.model), default=str)),
        "artifacts": artifacts,
        "validation": validation,
        "files": files,
        "versions": library_versions(),
    }
