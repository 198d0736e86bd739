"""Trained model files: where they are, how they load, how they are written.

Both trainers (`zoo.training`, `zoo.causal_lm`) write `model.keras` and
`train_report.json` into one folder; the CLI and the exporter find a model
by that file, its folder, or a registered name trained into `saved_models/`.
"""

import json
import os
import pathlib
import tempfile
import zipfile

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

    path = model_file(model)
    # Keras says "File not found" for a file that is there but cut short.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a .keras archive (a zip file); it is truncated or corrupt")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path}: the .keras archive is corrupt ({error})") from None


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
        multi_label=data.get("multi_label", False),
        **({"label_separator": data["label_separator"]} if "label_separator" in data else {}),
    )
    return dataset.split(data["validation_fraction"], data["seed"])


def check_folder(path, what):
    """`path` is a folder or can be made one: no part of it is an existing file (checked before any work)."""
    path = pathlib.Path(path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise ValueError(f"{what} {path}: {part} is a file, expected a folder")
            return


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
    """Call `write(temporary_path)`, then rename over `path` only if it worked.

    The temporary file is `.<stem>-<pid>-*<suffix>`: one left by a killed
    process (kill -9 mid-write) is removed by the next write.
    """
    path = pathlib.Path(path)
    remove_stale(path.parent, f".{path.stem}-")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale(directory, prefix):
    """Remove `<prefix><pid>-*` folders and files whose process is gone (a killed run's leftovers)."""
    import shutil

    for path in pathlib.Path(directory).glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or alive(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def alive(pid):
    """Whether process `pid` exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
