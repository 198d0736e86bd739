"""Trained model files: where they are, how they load, how they are written.

Both trainers (`zoo.training`, `zoo.causal_lm`) write `model.keras` and
`train_report.json` into one folder; the CLI and the exporter find a model
by that file, its folder, or a registered name trained into `saved_models/`.
"""

import json
import os
import pathlib
import tempfile

MODEL_FILENAME = "model.keras"
REPORT_FILENAME = "train_report.json"


def load_model(model):
    """Load a trained zoo model (classifier or causal LM) in Keras's safe mode.

    Args:
        model: a `.keras` file, a folder holding `model.keras`, or a bare
            registered name meaning `saved_models/<name>/model.keras`.
    """
    import keras

    import zoo.models  # noqa: F401  (registers zoo's layers for deserialization)

    return keras.saving.load_model(model_file(model), safe_mode=True)


def held_out_split(model):
    """`(train, validation)` exactly as a classifier was trained, from its `train_report.json`.

    Returns None when the model has no training report beside it, or its
    report is a language model's (no labeled split).
    """
    from zoo.data import load_texts

    report_path = model_file(model).parent / REPORT_FILENAME
    if not report_path.is_file():
        return None
    data = json.loads(report_path.read_text())["data"]
    if "class_names" not in data:
        return None
    dataset = load_texts(
        data["source"],
        text_column=data.get("text_column", "text"),
        label_column=data.get("label_column", "label"),
        encoding=data["encoding"],
        class_names=data["class_names"],
    )
    return dataset.split(data["validation_fraction"], data["seed"])


def model_file(model):
    path = pathlib.Path(model)
    if not path.exists() and not path.suffix:
        path = pathlib.Path("saved_models") / model
    if path.is_dir():
        path = path / MODEL_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model there (train one with `zoo train NAME`)")
    return path


def write_atomically(path, write):
    """Call `write(temporary_path)`, then rename over `path` only if it worked."""
    path = pathlib.Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
