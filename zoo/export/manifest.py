"""`manifest.json`: what one exported version is, in one file.

Model name, task fields (labels, tokenizer hashes, shape), config, every
artifact with its signatures, ops and size, library versions, parity
figures and the sha256 of every file.
"""

import json

import keras

from zoo.versions import library_versions

MANIFEST_FILENAME = "manifest.json"
MANIFEST_FORMAT = "zoo.export.manifest/1"


def build_manifest(name, version, task, model, options, artifacts, validation, files):
    """The manifest dict (JSON-serializable).

    Args:
        task: the model's export task; `options` its export options.
        artifacts: `{artifact key: {...format, path, signatures, ops}}`.
        validation: `{artifact key: parity figures}`.
        files: `{relative path: sha256}` of every file in the version.
    """
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        **task.manifest_fields(model, options),
        "config": json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str)),
        "artifacts": artifacts,
        "validation": validation,
        "files": files,
        "versions": library_versions(),
    }
