"""`zoo.beam`: a real Beam DirectRunner pipeline (several processes) labels every row once, as the single process does."""

import json
import subprocess
import sys

import pytest

from tests import helpers
from zoo.labelling import label_corpus

pytestmark = pytest.mark.slow


def _inputs(folder):
    folder.mkdir()
    texts = {}
    for part in range(3):
        rows = [{"id": f"{part}-{i}", "text": f"{text} {part} {i}"} for i, text in enumerate(helpers.TEXTS)]
        (folder / f"part{part}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        texts.update({(str(folder / f"part{part}.jsonl"), row["id"]): row["text"] for row in rows})
    return texts


def test_direct_runner_labels_every_row_once_like_the_single_process_path(gru_export, tmp_path):
    model = gru_export / "litert" / "model.tflite"
    texts = _inputs(tmp_path / "in")
    result = subprocess.run(
        [sys.executable, "-m", "zoo.beam", "--model", str(model), "--input", str(tmp_path / "in" / "*.jsonl"),
         "--output", str(tmp_path / "out" / "labels"), "--direct_num_workers", "2"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
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
