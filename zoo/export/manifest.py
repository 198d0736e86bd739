"""`manifest.json`: what one exported version is, in one file.

Model name and config, vocabulary hash, labels, every artifact with its
inputs, outputs, signature and op list, library versions, parity figures.
"""

import hashlib
import json
import platform

import keras

MANIFEST_FILENAME = "manifest.json"
MANIFEST_FORMAT = "zoo.export.manifest/1"


def vocabulary_sha256(vocabulary):
    """Hash of the vocabulary exactly as the `vocabulary.txt` asset stores it."""
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def library_versions():
    import ai_edge_litert
    import keras_hub
    import numpy
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "numpy": numpy.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", _distribution_version("ai-edge-litert")),
    }


def _distribution_version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def build_manifest(*, name, version, model, artifacts, validation, files):
    """Assemble the manifest dict (JSON-serializable).

    Args:
        model: the exported `TextClassifier` or causal LM.
        artifacts: `{artifact_name: {...format, path, inputs, outputs, ops}}`.
        validation: `{artifact_name: parity figures}`.
        files: `{relative_path: sha256}` of every file in the version.
    """
    from zoo.export.causal_lm import is_causal_lm

    described = _causal_lm_fields(model) if is_causal_lm(model) else _classifier_fields(model)
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        **described,
        "config": json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str)),
        "artifacts": artifacts,
        "validation": validation,
        "files": files,
        "versions": library_versions(),
    }


def _classifier_fields(classifier):
    tokenizer = classifier.preprocessor.tokenizer
    return {
        "task": "text-classification",
        "labels": list(classifier.class_names),
        "sequence_length": classifier.sequence_length,
        "tokenizer": {
            "type": "word",
            "lower": tokenizer.lower,
            "punctuation": tokenizer.punctuation,
            "vocabulary_size": tokenizer.vocabulary_size(),
            "vocabulary_sha256": vocabulary_sha256(tokenizer.vocabulary),
        },
    }


def _causal_lm_fields(causal_lm):
    tokenizer = causal_lm.preprocessor.tokenizer
    backbone = causal_lm.backbone
    return {
        "task": "causal-lm",
        "shape": {key: backbone.get_config()[key] for key in
                  ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")},
        "tokenizer": {
            "type": "gpt2_byte_level_bpe",
            "vocabulary_size": tokenizer.vocabulary_size(),
            "end_token_id": tokenizer.end_token_id,
            "vocabulary_sha256": hashlib.sha256(
                json.dumps(tokenizer.vocabulary, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest(),
            "merges_sha256": vocabulary_sha256(tokenizer.merges),
        },
    }
