"""Killing an export or a training run at any point leaves nothing half-written (issue 15).

Each test runs the real job in a child process, waits until it reaches a
point (seen on disk: a version claimed, the SavedModel staged, the LiteRT
file staged; training started, the first checkpoint written), kills it with
SIGKILL or interrupts it with SIGINT, and checks what is left: no partial
integer version, no half-written model.keras; the next run removes the
leftovers and succeeds.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests import helpers
from tests.test_cli import run_zoo

# Every test here trains, exports or starts processes: `make check` leaves them out.
pytestmark = pytest.mark.slow

EXPORT_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {cwd!r})
    from tests import helpers
    from zoo.export import export
    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    export(model, root={root!r}, formats=("saved_model", "litert", "onnx"), variants=(),
           validation_data=helpers.TEXTS)
""")


def start(command, tmp_path):
    """A child with its own temporary dir (so its `zoo-export-*` leftovers can be checked)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)


def default_signals():
    """The child's Ctrl-C, SIGTERM and SIGHUP as a terminal gives them: a test run started in the background
    (`cmd &` in a script, nohup) ignores SIGINT (and SIGHUP), a child inherits that, and zoo (like Python
    itself) leaves a signal ignored at start ignored."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def wait_for(process, reached, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not reached():
        if process.poll() is not None:
            pytest.fail(f"the child ended (exit status {process.returncode}) before {what}: "
                        f"{process.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def staged(base, relative):
    return lambda: any((staging / relative).exists() for staging in base.glob(".tmp-1-*"))


def test_an_export_killed_at_each_point_leaves_no_version_and_the_next_one_cleans_up(tmp_path):
    root = tmp_path / "serving"
    base = root / "gru_classifier"
    command = [sys.executable, "-c", EXPORT_SCRIPT.format(cwd=os.getcwd(), root=str(root))]
    points = {
        "version 1 claimed": lambda: (base / ".claim-1").exists(),
        "the SavedModel staged": staged(base, "saved_model.pb"),
        "the LiteRT file staged": staged(base, "litert/model.tflite"),
    }
    for what, reached in points.items():
        process = start(command, tmp_path)
        try:
            wait_for(process, reached, what)
        finally:
            process.kill()
            process.wait()
        assert not [path for path in base.iterdir() if path.name.isdigit()], f"a version appeared: killed at {what}"
    assert any(base.glob(".tmp-1-*")) and any((tmp_path / "tmp").glob("zoo-export-*"))  # kill -9 left them

    process = start(command, tmp_path)
    assert process.wait(timeout=600) == 0, process.stderr.read()
    assert sorted(path.name for path in base.iterdir()) == ["1"]
    assert not list((tmp_path / "tmp").glob("zoo-export-*"))
    verified = run_zoo("verify", base / "1")
    assert verified.returncode == 0, verified.stderr


@pytest.fixture
def tiny_csv(tmp_path):
    import csv

    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for text, label in zip(helpers.TEXTS * 4, np.tile(helpers.LABELS, 4)):
            writer.writerow([text, ["neg", "pos"][label]])
    return path


def train_command(data, out, epochs=400):
    # Many epochs and no early stop: the run lasts long enough to be killed mid-way.
    return [sys.executable, "-m", "zoo", "train", "gru_classifier", "--data", str(data), "--out", str(out),
            "--epochs", str(epochs), "--patience", str(epochs), "--batch-size", "8"]


def checkpoint(out, name=""):
    return lambda: any(path.is_dir() and (not name or (path / name).exists()) for path in out.glob(".checkpoint-*"))


def test_training_killed_at_each_point_leaves_no_model_and_the_next_run_cleans_up(tiny_csv, tmp_path):
    out = tmp_path / "model"
    for what, reached in {"training started": checkpoint(out), "the first checkpoint written": checkpoint(
            out, "best.keras")}.items():
        process = start(train_command(tiny_csv, out), tmp_path)
        try:
            wait_for(process, reached, what)
        finally:
            process.kill()
            process.wait()
        assert not (out / "model.keras").exists(), f"killed at {what}"
    # A kill in the middle of writing model.keras leaves only its temporary file, named by the pid.
    (out / ".model-999999-abcd.keras").write_bytes(b"partial")
    assert any(out.glob(".checkpoint-*"))

    finished = subprocess.run(train_command(tiny_csv, out, epochs=2), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert sorted(path.name for path in out.iterdir()) == ["logs", "model.keras", "train_report.json"]


def test_ctrl_c_during_training_is_one_line_exit_130_and_leaves_nothing(tiny_csv, tmp_path):
    out = tmp_path / "model"
    process = start(train_command(tiny_csv, out), tmp_path)
    try:
        wait_for(process, checkpoint(out, "best.keras"), "the first checkpoint written")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        process.kill()
    lines = [line for line in process.stderr.read().splitlines() if line.startswith("zoo ")]
    assert process.returncode == 130 and lines == ["zoo train: error: interrupted; nothing half-written was left"]
    # Only the run's TensorBoard logs (whole event records, kept for a look at what happened).
    assert [path.name for path in out.iterdir()] == ["logs"]


def test_an_export_stopped_at_each_write_point_publishes_nothing_and_the_next_one_succeeds(tmp_path, monkeypatch):
    from zoo import saving
    from zoo.export import exporter

    class SimulatedKill(BaseException):
        pass

    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    base = tmp_path / "serving" / "gru_classifier"
    for point in exporter.WRITE_POINTS:
        passed = []

        def stop(reached, point=point, passed=passed):
            passed.append(reached)
            if reached == point:
                raise SimulatedKill(point)

        monkeypatch.setattr(saving, "on_write_point", stop)
        with pytest.raises(SimulatedKill):
            exporter.export(model, root=tmp_path / "serving", formats=("litert",), variants=(),
                            validation_data=helpers.TEXTS)
        published = [path.name for path in base.iterdir()]
        # Stopped before the rename: nothing (no staging folder, no claim); after it: the whole version.
        assert published == (["1"] if point == "export published" else []), f"stopped at {point}"
        if published:
            assert run_zoo("verify", base / "1").returncode == 0
    assert passed == list(exporter.WRITE_POINTS)
