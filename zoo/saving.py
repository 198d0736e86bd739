"""Trained model files: where they are, how they load, how they are written.

Both trainers (`zoo.training`, `zoo.causal_lm`) write `model.keras` and
`train_report.json` into one folder; the CLI and the exporter find a model
by that file, its folder, or a registered name trained into `saved_models/`.

A run's model and its report are one unit: the report travels inside
`model.keras` (a `zoo_train_report.json` member Keras ignores), written
whole and renamed into place in one step, so every reader
(`training_report`, `held_out_split`, `zoo evaluate`, `zoo export`) gets the
report of the run that made the model even when a kill fell between the two
files. `train_report.json` beside it is the readable copy, tied to the model
by the run id both carry.

Every file is written to a temporary name and renamed (`write_atomically`);
a job's write points (its `WRITE_POINTS`) call `reached(point)`, where a
kill test can stop it.
"""

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import uuid
import zipfile

MODEL_FILENAME = "model.keras"
REPORT_FILENAME = "train_report.json"
# The train report's member inside model.keras.
EMBEDDED_REPORT = "zoo_train_report.json"


class StaleReportError(ValueError):
    """A model and a training report that belong to different runs, or data that changed since training."""


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


# === One run's outputs ===


def new_run_id():
    return uuid.uuid4().hex


def save_trained_model(model, out_dir, report, point_prefix=""):
    """Write `model.keras` (carrying `report`) and then `train_report.json`, each atomically.

    `report` gets a `run_id` (kept if it has one). The model file is the
    commit point: from its rename on, readers see the new run whole.
    """
    report = dict(report, run_id=report.get("run_id") or new_run_id())
    text = json.dumps(report, indent=2)

    def save(path):
        model.save(path)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(EMBEDDED_REPORT, text)

    model_path = pathlib.Path(out_dir) / MODEL_FILENAME
    write_atomically(model_path, save, point=f"{point_prefix}model")
    write_atomically(model_path.parent / REPORT_FILENAME, lambda path: pathlib.Path(path).write_text(text),
                     point=f"{point_prefix}report")
    return model_path, report


def training_report(model):
    """The training report of the run that made `model` (a `.keras` file or its folder), or None.

    Read from inside `model.keras`; a model written before reports travelled
    with it falls back to `train_report.json` beside it.
    """
    path = model_file(model)
    try:
        with zipfile.ZipFile(path) as archive:
            if EMBEDDED_REPORT in archive.namelist():
                return json.loads(archive.read(EMBEDDED_REPORT))
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a .keras archive (a zip file); it is truncated or corrupt") from None
    beside = path.parent / REPORT_FILENAME
    if not beside.is_file():
        return None
    try:
        return json.loads(beside.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{beside}: not a JSON training report ({error})") from None


def held_out_split(model):
    """`(train, validation)` exactly as a classifier was trained, from its training report.

    Returns None when the model has no training report, or its report is a
    language model's (no labeled split). Raises `StaleReportError` when the
    data file changed since training (its split would mix training rows
    into validation).
    """
    report = training_report(model)
    if report is None or "class_names" not in report["data"]:
        return None
    return training_split(report, report["data"]["source"],
                          advice="pass other held-out data to validate on (zoo export --data)")


def training_split(report, path, advice=""):
    """`(train, validation)` of labeled data `path` as the run of `report` split it.

    `path` must hold the bytes the run was trained on, where the report
    records them: else `StaleReportError`, its message ending with `advice`.
    """
    from zoo.data import load_texts

    data = report["data"]
    check_same_data(path, data, advice)
    dataset = load_texts(
        path,
        text_column=data.get("text_column", "text"),
        label_column=data.get("label_column", "label"),
        encoding=data["encoding"],
        class_names=data["class_names"],
        multi_label=data.get("multi_label", False),
        **({"label_separator": data["label_separator"]} if "label_separator" in data else {}),
    )
    train, validation = dataset.split(data["validation_fraction"], data["seed"])
    if data.get("drop_duplicates"):  # the run validated on the texts training had not seen
        validation = validation.without_texts_of(train)
    return train, validation


def data_fingerprint(path):
    """`{"sha256", "bytes"}` of a data file, or of every file in a data folder (by relative path)."""
    path = pathlib.Path(path)
    digest, size = hashlib.sha256(), 0
    files = [path] if path.is_file() else sorted(
        file for file in path.rglob("*") if file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(path).parts))
    for file in files:
        if file is not path:
            digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return {"sha256": digest.hexdigest(), "bytes": size}


def same_data(path, data):
    """Whether `path` holds what the report's `data` recorded (True where it recorded no fingerprint)."""
    recorded = data.get("fingerprint")
    # A missing file is the loader's to report ("no such file or folder").
    return recorded is None or not pathlib.Path(path).exists() or data_fingerprint(path) == recorded


def is_training_source(path, data):
    """Whether `path` names the file or folder the report's run was trained on (its bytes aside)."""
    return pathlib.Path(path).resolve() == pathlib.Path(data["source"]).resolve()


def check_same_data(path, data, advice=""):
    """Raise `StaleReportError` unless `path` holds the data the report's run was trained on."""
    if same_data(path, data):
        return
    recorded = data["fingerprint"]
    then = f"{recorded['bytes']} bytes, sha256 {recorded['sha256'][:12]}..."
    if is_training_source(path, data):
        message = (f"{path}: changed since the model was trained on it (then {then}, now "
                   f"{data_fingerprint(path)['bytes']} bytes); its seeded split would now put training rows "
                   "into validation")
    else:
        message = f"{path}: not the data the model was trained on ({data['source']}, {then})"
    raise StaleReportError(f"{message}; {advice}" if advice else message)


# === Folders and files ===


def check_folder(path, what):
    """`path` is a folder or can be made one: no part of it is an existing file or a dangling link (checked
    before any work)."""
    path = pathlib.Path(path)
    for part in (path, *path.parents):
        if part.is_symlink() and not part.exists():
            raise ValueError(f"{what} {path}: {part} is a symbolic link to {os.readlink(part)}, which does not "
                             "exist")
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


def write_atomically(path, write, point=None):
    """Call `write(temporary_path)`, then rename over `path` only if it worked.

    The temporary file is `.<name>-<pid>-*<suffixes>` (Keras checks a name's
    suffixes, e.g. `.weights.h5`): one left by a killed process (kill -9
    mid-write) is removed by the next write. The file gets the mode a new
    file gets (0666 less the umask), not `mkstemp`'s 0600. `point` names the
    write point (`reached("<point> staged")` before the rename,
    `reached(point)` after).
    """
    path = pathlib.Path(path)
    stem, dot, suffixes = path.name.partition(".")
    remove_stale(path.parent, f".{stem}-")
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}-{os.getpid()}-", suffix=dot + suffixes, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~current_umask())
        if point:
            reached(f"{point} staged")
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    if point:
        reached(point)


def current_umask():
    """The process's umask: read from /proc where there is one (setting it to read it races other threads)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
        return umask


def remove_stale(directory, prefix):
    """Remove `<prefix><pid>-*` folders and files whose process is gone (a killed run's leftovers)."""
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


# === Write points (kill tests) ===

# Set by a test to stop a job at a write point (tests/test_training_outputs.py); None in normal runs.
on_write_point = None


def reached(point):
    """A job reached write point `point`: everything before it is on disk, nothing after it."""
    if on_write_point is not None:
        on_write_point(point)
