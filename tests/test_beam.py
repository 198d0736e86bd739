"""`zoo.beam`: a real Beam DirectRunner pipeline (several processes) labels every row once, as the single process does."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tests import helpers
from zoo.labelling import label_corpus

pytestmark = pytest.mark.slow


def _inputs(folder, rows_per_file=len(helpers.TEXTS)):
    folder.mkdir()
    texts = {}
    for part in range(3):
        rows = [{"id": f"{part}-{i}", "text": f"{helpers.TEXTS[i % len(helpers.TEXTS)]} {part} {i}"}
                for i in range(rows_per_file)]
        (folder / f"part{part}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        texts.update({(str(folder / f"part{part}.jsonl"), row["id"]): row["text"] for row in rows})
    return texts


def _command(model, tmp_path):
    return [sys.executable, "-m", "zoo.beam", "--model", str(model), "--input", str(tmp_path / "in" / "*.jsonl"),
            "--output", str(tmp_path / "out" / "labels"), "--direct_num_workers", "2"]


def _assert_exactly_once_like_the_single_process_path(model, texts, tmp_path):
    rows = [json.loads(line) for shard in sorted((tmp_path / "out").glob("labels-*.jsonl"))
            for line in shard.read_text(encoding="utf-8").splitlines()]
    keys = [(row["file"], row["id"]) for row in rows]
    assert len(keys) == len(set(keys)) == len(texts) and set(keys) == set(texts)  # every row exactly once

    single = {}
    for part in sorted((tmp_path / "in").glob("*.jsonl")):
        output = tmp_path / f"{part.stem}.labels.jsonl"
        label_corpus(model, part, output, threads=1)
        single.update({(str(part), row["id"]): row for row in map(json.loads, output.read_text().splitlines())})
    for row in rows:
        expected = single[row["file"], row["id"]]
        assert (row["label"], row["score"]) == (expected["label"], expected["score"])


def test_direct_runner_labels_every_row_once_like_the_single_process_path(gru_export, tmp_path):
    model = gru_export / "litert" / "model.tflite"
    texts = _inputs(tmp_path / "in")
    result = subprocess.run(_command(model, tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_exactly_once_like_the_single_process_path(model, texts, tmp_path)


def _children(pid):
    """Linux's list of `pid`'s child processes."""
    try:
        return [int(child) for task in pathlib.Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    except OSError:  # the process has exited
        return []


def _has_open(pid, path):
    try:
        return any(os.readlink(fd) == str(path) for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def _workers(pipeline):
    # The DirectRunner starts each worker through `sh -c`: the workers are the pipeline's grandchildren.
    return [grandchild for child in _children(pipeline.pid) for grandchild in _children(child)]


def _kill_a_worker_once(pipeline, ready=lambda worker: True, timeout=120):
    """SIGKILL the first SDK worker process of `pipeline` for which `ready(pid)` holds; its pid."""
    deadline = time.monotonic() + timeout
    while pipeline.poll() is None and time.monotonic() < deadline:
        for worker in _workers(pipeline):
            if ready(worker):
                os.kill(worker, signal.SIGKILL)
                return worker
        time.sleep(0.02)
    raise AssertionError(f"no worker became ready (pipeline exit status {pipeline.poll()})")


def _finish(pipeline, timeout):
    """`pipeline`'s (seconds it took to exit, stderr); a pipeline still running after `timeout` is a failure."""
    start = time.monotonic()
    try:
        stderr = pipeline.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        for process in [*_workers(pipeline), *_children(pipeline.pid), pipeline.pid]:
            os.kill(process, signal.SIGKILL)
        pipeline.communicate()
        raise AssertionError(f"the pipeline still ran {timeout} s after its worker was killed") from None
    return time.monotonic() - start, stderr


def _assert_failed_cleanly(pipeline, failed_in, stderr, output_folder):
    assert pipeline.returncode != 0 and failed_in < 60, (pipeline.returncode, failed_in)
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("python -m zoo.beam: the pipeline failed (") and last_line.endswith(
        "rerunning the same command is safe"), stderr[-3000:]
    assert not output_folder.exists() or list(output_folder.iterdir()) == []  # no shard, no temporary folder


def test_a_worker_killed_while_labelling_fails_the_run_cleanly_and_the_rerun_labels_every_row_once(gru_export,
                                                                                                    tmp_path):
    model = (gru_export / "litert" / "model.tflite").resolve()
    # Enough rows that labelling lasts seconds: the worker is killed while it labels, never after.
    texts = _inputs(tmp_path / "in", rows_per_file=5000)
    with subprocess.Popen(_command(model, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as pipeline:
        _kill_a_worker_once(pipeline, ready=lambda worker: _has_open(worker, model))
        failed_in, stderr = _finish(pipeline, timeout=120)
    # Beam does not retry the dead worker's bundle: the run fails, promptly, and leaves nothing behind.
    _assert_failed_cleanly(pipeline, failed_in, stderr, tmp_path / "out")

    rerun = subprocess.run(_command(model, tmp_path), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert [path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith("labels-")] == []
    _assert_exactly_once_like_the_single_process_path(model, texts, tmp_path)


def test_a_worker_killed_before_it_connects_fails_the_run_instead_of_hanging(gru_export, tmp_path):
    _inputs(tmp_path / "in")
    with subprocess.Popen(_command(gru_export / "litert" / "model.tflite", tmp_path), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as pipeline:
        _kill_a_worker_once(pipeline)  # as soon as it exists: it is still importing Beam
        # Beam alone waits forever for the bundle it sent to that worker.
        failed_in, stderr = _finish(pipeline, timeout=90)
    _assert_failed_cleanly(pipeline, failed_in, stderr, tmp_path / "out")
