"""A training run's outputs are one unit, whatever stops the run (issue 27, items 2-5, 13-15).

The kill tests stop a run at each of its write points (`WRITE_POINTS`,
announced through `zoo.saving.reached`), in process by raising from the
hook, over the complete outputs of an earlier run with other data; each
rerun is stopped at the next point, so every point is also a rerun's
starting state. At each stop a reader (`training_report`, `held_out_split`)
must see the earlier run whole or the new one whole, never a mix, and the
last rerun must finish. One `kill -9` in a child process checks what a real
kill leaves (its temporary files) is cleaned up by the rerun.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from tests import helpers
from zoo import causal_lm, cli, interrupts, saving, training
from zoo.preprocessing import bpe

TINY_CLASSIFIER = {"sequence_length": 16, "hidden_dim": 8, "embedding_dim": 8}
TINY_GPT2 = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "max_sequence_length": 32,
             "sequence_length": 16, "dropout": 0.0}


class SimulatedKill(BaseException):
    """Raised at a write point: nothing of the job runs after it (no `except Exception` catches it)."""


def stop_at(monkeypatch, point):
    """Make the next job raise `SimulatedKill` at its first `point`; returns the points it passed."""
    passed = []

    def hook(reached):
        passed.append(reached)
        if reached == point:
            raise SimulatedKill(point)

    monkeypatch.setattr(saving, "on_write_point", hook)
    return passed


def write_reviews(path, class_names, copies=4):
    rows = [(text, class_names[label]) for text, label in zip(helpers.TEXTS * copies, np.tile(helpers.LABELS, copies))]
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return path


def train_gru(data, out_dir, **settings):
    return training.train_classifier("gru_classifier", data, out_dir=out_dir, epochs=1, batch_size=8, verbose=0,
                                     **dict(TINY_CLASSIFIER, **settings))


def visible_files(folder):
    """Every file a user sees (not the hidden temporary ones, nor the runs' TensorBoard logs), by relative path."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and path.relative_to(folder).parts[0] != "logs"
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def embedded_vocabulary_size(model_path):
    with zipfile.ZipFile(model_path) as archive:
        return len(json.loads(archive.read("assets/preprocessor/tokenizer/vocabulary.json")))


# === The classifier ===


@pytest.mark.slow
def test_a_classifier_run_stopped_at_each_write_point_leaves_one_whole_run(tmp_path, monkeypatch):
    old_data = write_reviews(tmp_path / "old.csv", ["neg", "pos"])
    new_data = write_reviews(tmp_path / "new.csv", ["bad", "good"])
    out = tmp_path / "model"
    runs = {train_gru(old_data, out, seed=1).report["run_id"]}
    for point in (point for point in training.WRITE_POINTS if not point.endswith(" staged")):
        with pytest.raises(SimulatedKill):
            stop_at(monkeypatch, point)
            train_gru(new_data, out, seed=2)
        # What every reader sees belongs to the model beside it: its classes, its data, its split.
        report = saving.training_report(out)
        classes = saving.load_model(out).class_names
        assert report["data"]["class_names"] == classes, f"stopped at {point}"
        _, validation = saving.held_out_split(out)
        assert validation.class_names == tuple(classes) and report["data"]["seed"] == (2 if "bad" in classes else 1)
        # The readable copy is whole: the model's, or (stopped between the two) the last whole run's.
        runs.add(report["run_id"])
        assert json.loads((out / "train_report.json").read_text())["run_id"] in runs, f"stopped at {point}"

    passed = stop_at(monkeypatch, None)
    result = train_gru(new_data, out, seed=2)
    assert tuple(passed) == training.WRITE_POINTS
    assert sorted(os.listdir(out)) == ["logs", "model.keras", "train_report.json"]
    assert json.loads((out / "train_report.json").read_text()) == saving.training_report(out) == result.report
    # Files as any other program writes them: 0666 less the umask, not mkstemp's 0600.
    umask = saving.current_umask()
    assert {oct((out / name).stat().st_mode & 0o777) for name in ("model.keras", "train_report.json")} == {
        oct(0o666 & ~umask)}


def test_write_atomically_gives_the_umask_mode_and_keeps_the_suffixes(tmp_path):
    written = []
    previous = os.umask(0o027)
    try:
        saving.write_atomically(tmp_path / "epoch_001.weights.h5",
                                lambda path: written.append(path) or pathlib.Path(path).write_bytes(b"x"))
    finally:
        os.umask(previous)
    assert written[0].endswith(".weights.h5") and pathlib.Path(written[0]).name.startswith(".epoch_001-")
    assert (tmp_path / "epoch_001.weights.h5").stat().st_mode & 0o777 == 0o640


def test_a_dangling_symlink_out_dir_is_refused_before_the_data_is_read(tmp_path):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    # The data does not exist either: the out_dir error comes first, before any reading.
    with pytest.raises(ValueError, match=r"out_dir .*out: .*out is a symbolic link to .*gone, which does not exist"):
        train_gru(tmp_path / "missing.csv", out)
    with pytest.raises(ValueError, match="symbolic link"):
        causal_lm.train_causal_lm("gpt2_tiny", tmp_path / "missing.txt", out_dir=out / "lm")
    # A language model's folders, too (they were found only once an epoch ended).
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "backup").write_text("")
    with pytest.raises(ValueError, match=r"out_dir .*lm/backup: .*lm/backup is a file, expected a folder"):
        causal_lm.train_causal_lm("gpt2_tiny", tmp_path / "missing.txt", out_dir=tmp_path / "lm")


# === Evaluating and exporting on the training run's split (item 3) ===


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    """A classifier trained with seed 5 and a validation fraction of 0.2, and its data file."""
    folder = tmp_path_factory.mktemp("seeded")
    data = write_reviews(folder / "reviews.csv", ["neg", "pos"], copies=5)
    train_gru(data, folder / "model", seed=5, validation_fraction=0.2)
    return folder / "model", data


def run_cli(capsys, *arguments):
    status = cli.main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, [line for line in captured.err.splitlines() if line.startswith("zoo ")]


@pytest.mark.slow
def test_evaluate_split_is_the_training_runs_split_and_changed_data_is_refused(seeded_run, capsys, tmp_path):
    model, data = seeded_run
    report = json.loads((model / "train_report.json").read_text())
    status, out, _ = run_cli(capsys, "evaluate", model, "--data", data, "--split", "validation", "--json")
    figures = json.loads(out)
    assert status == 0 and sum(map(sum, figures["confusion_matrix"])) == report["data"]["validation_examples"] == 24
    assert figures["accuracy"] == report["validation"]["accuracy"]
    # Without --data: the data the run names.
    status, out, _ = run_cli(capsys, "evaluate", model, "--split", "train", "--json")
    assert status == 0 and sum(map(sum, json.loads(out)["confusion_matrix"])) == report["data"]["train_examples"]

    status, _, errors = run_cli(capsys, "evaluate", model, "--data", data, "--split", "validation", "--seed", "1337")
    assert status == 2 and errors == [("zoo evaluate: error: --seed 1337: the model was trained with --seed 5; leave "
                                       "it out to use the training run's split")]
    changed = tmp_path / "reviews.csv"
    shutil.copy(data, changed)
    with open(changed, "a") as file:
        file.write("one more review,pos\n")
    status, _, errors = run_cli(capsys, "evaluate", model, "--data", changed, "--split", "validation")
    assert status == 2 and len(errors) == 1 and "not the data the model was trained on" in errors[0]
    assert "evaluate other data with --split all" in errors[0]


def test_the_exports_split_refuses_a_data_file_changed_since_training(seeded_run, tmp_path):
    model, data = seeded_run
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    train, validation = saving.held_out_split(copy)
    assert len(validation) == 24 and len(train) == 96
    original = data.read_bytes()
    try:
        data.write_bytes(original + b"one more review,pos\n")
        with pytest.raises(ValueError, match=r"reviews.csv: changed since the model was trained on it"):
            saving.held_out_split(copy)
    finally:
        data.write_bytes(original)


# === The language model ===


def train_lm(corpus, out_dir, **settings):
    return causal_lm.train_causal_lm("gpt2_tiny", corpus, out_dir=out_dir, epochs=2, batch_size=4, jit_compile=False,
                                     max_train_windows=8, tokenizer="train", verbose=0,
                                     **{**TINY_GPT2, "bpe_vocabulary_size": 320, **settings})


def write_corpus(path, who):
    path.write_text(helpers.CORPUS.replace("ROMEO", who) * 2)
    return path


def check_lm_folder(out, point):
    """Readers see one run whole: the report inside model.keras is the model's; every file is whole."""
    report = saving.training_report(out)
    assert report["config"]["bpe_vocabulary_size"] == embedded_vocabulary_size(out / "model.keras"), point
    assert "run_id" in json.loads((out / "train_report.json").read_text()), point
    if (out / "tokenizer").is_dir() and (out / "tokenizer" / bpe.MERGES_FILENAME).exists():
        assert bpe.read_merges(out / "tokenizer" / bpe.MERGES_FILENAME), point


@pytest.mark.slow
def test_a_language_model_run_stopped_at_each_write_point_resumes_or_starts_whole(tmp_path, monkeypatch, caplog):
    old_corpus, new_corpus = write_corpus(tmp_path / "old.txt", "HAMLET"), write_corpus(tmp_path / "new.txt", "LEAR")
    out = tmp_path / "lm"
    # What Keras's own BackupAndRestore left when SIGTERM fell in its HDF5 write (an older zoo): discarded
    # with a warning, where every rerun used to fail.
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    (out / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    assert train_lm(old_corpus, out, bpe_vocabulary_size=300).report["resumed_from_epoch"] == 0
    assert [record.getMessage() for record in caplog.records if "backup" in record.getMessage()] == [
        (f"{out / 'backup'}: cannot resume the interrupted run's backup: training_metadata.json does not record the "
         "run's settings (written by Keras's BackupAndRestore in an older zoo, or by another program); starting over")]
    # Each run is stopped at the next point; the stop before it is its starting state.
    for point in (point for point in causal_lm.WRITE_POINTS if not point.endswith(" staged")):
        with pytest.raises(SimulatedKill):
            stop_at(monkeypatch, point)
            train_lm(new_corpus, out)
        check_lm_folder(out, point)
        if point == "backup":
            # An interrupted run waits there: a rerun with another vocabulary size is refused, naming it.
            with pytest.raises(ValueError, match=r"lm/backup: an interrupted run with other settings waits there to "
                                                 r"be resumed \(bpe_vocabulary_size: 320, this run: 400\)"):
                train_lm(new_corpus, out, bpe_vocabulary_size=400)

    passed = stop_at(monkeypatch, None)
    result = train_lm(new_corpus, out)
    assert [point for point in passed if point.startswith("tokenizer")] == []  # its whole vocabulary is reused
    assert result.report["epochs_run"] == 2 and len(result.report["history"]["loss"]) == 2
    assert visible_files(out) == ["checkpoints/epoch_001.weights.h5", "checkpoints/epoch_002.weights.h5",
                                  "model.keras", "tokenizer/merges.txt", "tokenizer/vocab.json",
                                  "tokenizer/zoo_tokenizer.json", "train_report.json"]
    assert embedded_vocabulary_size(out / "model.keras") == 320
    assert json.loads((out / "train_report.json").read_text()) == saving.training_report(out) == result.report


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {cwd!r})
    from zoo import saving
    from tests.test_training_outputs import train_lm
    seen = []
    def kill_at_the_second_backup(point):
        seen.append(point)
        if seen.count("backup staged") == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    saving.on_write_point = kill_at_the_second_backup
    train_lm({corpus!r}, {out!r})
""")


@pytest.mark.slow
def test_kill_9_while_the_backup_is_written_resumes_from_the_last_whole_one(tmp_path):
    corpus, out = write_corpus(tmp_path / "corpus.txt", "LEAR"), tmp_path / "lm"
    script = KILL_SCRIPT.format(cwd=os.getcwd(), corpus=str(corpus), out=str(out))
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    # Epoch 2's state was whole under its temporary name: the backup still names epoch 1's.
    leftovers = sorted(path.name.split("-")[0] for path in (out / "backup").iterdir() if path.name.startswith("."))
    assert leftovers == [".training_metadata"]
    assert json.loads((out / "backup" / causal_lm.BACKUP_STATE).read_text())["epoch"] == 1

    result = train_lm(corpus, out)
    assert result.report["resumed_from_epoch"] == 1 and result.report["epochs_run"] == 2
    assert not (out / "backup").exists() and not [path for path in out.iterdir() if path.name.startswith(".")]


def test_a_cut_short_vocabulary_is_learned_again_never_reused(tmp_path, caplog):
    from zoo.data import Corpus

    corpus = Corpus((helpers.CORPUS,), "corpus", "utf-8")
    settings = {"bpe_vocabulary_size": 300, "data": "x"}
    directory = tmp_path / "tokenizer"
    vocabulary, merges = causal_lm.prepare_vocabulary(directory, corpus, settings)
    assert causal_lm.prepare_vocabulary(directory, corpus, settings) == (vocabulary, merges)
    merges.write_bytes(b"")  # the disk filled up between vocab.json and merges.txt
    with pytest.raises(bpe.VocabularyError, match=r"merges.txt: no merge rules; the file is empty or cut short"):
        bpe.vocabulary_files(directory)
    causal_lm.prepare_vocabulary(directory, corpus, settings)
    assert len(bpe.read_merges(merges)) == 300 - 257
    assert any("merges.txt: no merge rules" in record.getMessage() for record in caplog.records)
    # Another size: learned again, not reused.
    causal_lm.prepare_vocabulary(directory, corpus, dict(settings, bpe_vocabulary_size=280))
    assert len(bpe.read_merges(merges)) == 280 - 257


# === Signals (item 13) ===


@pytest.mark.parametrize("signal_number, status, what", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                                         (signal.SIGHUP, 129, "stopped by SIGHUP")])
def test_a_signal_during_predict_is_one_line_and_its_exit_status(signal_number, status, what, monkeypatch, capsys):
    def load_model(model):
        os.kill(os.getpid(), signal_number)
        raise AssertionError("the signal was not delivered")

    monkeypatch.setattr(saving, "load_model", load_model)
    # As in a terminal: pytest-xdist's workers (and nohup) ignore SIGHUP, and zoo leaves an ignored signal ignored.
    previous = signal.signal(signal_number, signal.SIG_DFL)
    try:
        assert run_cli(capsys, "predict", "some/model", "a text")[::2] == (
            status, [f"zoo predict: error: {what}; nothing half-written was left"])
    finally:
        signal.signal(signal_number, previous)


def test_sigterm_at_start_up_and_in_bpe_training_is_one_line_and_143(monkeypatch, capsys, tmp_path):
    def terminate(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal was not delivered")

    monkeypatch.setattr(cli, "_build_parser", terminate)
    assert run_cli(capsys, "list")[::2] == (143, ["zoo list: error: stopped by SIGTERM; nothing half-written was left"])
    monkeypatch.undo()

    monkeypatch.setattr(bpe, "train_byte_level_bpe", terminate)
    corpus = write_corpus(tmp_path / "corpus.txt", "LEAR")
    status, _, errors = run_cli(capsys, "train", "gpt2_tiny", "--data", corpus, "--out", tmp_path / "lm",
                                "--set", "tokenizer=train")
    assert (status, errors) == (143, ["zoo train: error: stopped by SIGTERM; nothing half-written was left"])
    assert not (tmp_path / "lm" / "tokenizer").exists()


def test_an_ignored_sighup_stays_ignored(monkeypatch):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with interrupts.interruptible():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGHUP, previous)
