"""`zoo.labelling`: a corpus labelled from a file, in input order, resumable after a kill, with clear errors."""

import csv
import json
import os

import numpy as np
import pytest

from tests import helpers
from zoo.labelling import LabellingError, label_corpus, read_records

TEXTS = [f"{text} {i}" for i, text in enumerate(helpers.TEXTS * 3)]


def _jsonl(path, texts=TEXTS):
    path.write_text("".join(json.dumps({"id": f"doc-{i}", "text": text}) + "\n" for i, text in enumerate(texts)),
                    encoding="utf-8")
    return path


def _rows(path):
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_row_labelled_once_in_input_order_as_the_runner_labels_it(gru_export, tmp_path):
    import zoo.runtime

    model = gru_export / "litert" / "model.tflite"
    output = tmp_path / "labels.csv"
    result = label_corpus(model, _jsonl(tmp_path / "in.jsonl"), output, batch_size=5, threads=4,
                          probabilities=True)
    rows = _rows(output)
    assert result.rows == len(rows) == len(TEXTS) and result.resumed_from == 0
    assert [row["id"] for row in rows] == [f"doc-{i}" for i in range(len(TEXTS))]
    expected = zoo.runtime.load(model).predict(TEXTS)
    names = ["negative", "positive"]
    assert [row["label"] for row in rows] == [names[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([float(row["p:positive"]) for row in rows], expected[:, 1], atol=1e-6)
    assert not (tmp_path / "labels.csv.progress.json").exists()


def _model_of_kind(kind, gru_export, tiny_gru, folder):
    """What `label_corpus` is given for `kind`: a file of the export, its SavedModel folder, or a .keras file."""
    if kind == "keras":
        tiny_gru.save(folder / "model.keras")
        return folder / "model.keras"
    return gru_export if kind == "saved_model" else gru_export / kind


@pytest.mark.parametrize("kind", ["onnx/model.onnx", "saved_model", "keras"])
def test_every_model_kind_labels_the_same(kind, gru_export, tiny_gru, tmp_path):
    reference = tmp_path / "reference.jsonl"
    label_corpus(gru_export / "litert" / "model.tflite", _jsonl(tmp_path / "in.jsonl"), reference, threads=2)
    model = _model_of_kind(kind, gru_export, tiny_gru, tmp_path)
    output = tmp_path / "labels.jsonl"
    label_corpus(model, tmp_path / "in.jsonl", output, batch_size=7, threads=2)
    got, want = _rows(output), _rows(reference)
    assert [row["label"] for row in got] == [row["label"] for row in want]
    np.testing.assert_allclose([row["score"] for row in got], [row["score"] for row in want], atol=1e-5)


@pytest.mark.parametrize("kind", ["litert/model.tflite", "onnx/model.onnx", "saved_model", "keras"])
def test_long_documents_are_read_whole_by_every_model_kind(kind, gru_export, tiny_gru, tmp_path):
    from zoo.export.tasks.text_classification import document_texts

    documents = document_texts(helpers.TEXTS) + ["", "a great film"]
    model = _model_of_kind(kind, gru_export, tiny_gru, tmp_path)
    output = tmp_path / "labels.jsonl"
    label_corpus(model, _jsonl(tmp_path / "in.jsonl", documents), output, batch_size=5, threads=2,
                 probabilities=True, long_documents=True)
    got = np.array([[row["probabilities"]["negative"], row["probabilities"]["positive"]] for row in _rows(output)])
    np.testing.assert_allclose(got, tiny_gru.predict_documents(documents), atol=1e-5)
    cut = np.asarray(tiny_gru.predict(documents, verbose=0))
    assert np.abs(got - cut).max() > 1e-3  # not what the window alone gives for the long ones


class Killed(BaseException):
    """Stands in for a kill between two batches."""


def test_a_killed_run_continues_where_the_output_ends(gru_export, tmp_path):
    model, source = gru_export / "litert" / "model.tflite", _jsonl(tmp_path / "in.jsonl")
    complete = tmp_path / "complete.csv"
    label_corpus(model, source, complete, batch_size=4, threads=1)

    output = tmp_path / "labels.csv"

    def kill_after_three_batches(rows, *_):
        if rows >= 12:
            raise Killed

    with pytest.raises(Killed):
        label_corpus(model, source, output, batch_size=4, threads=1, progress=kill_after_three_batches)
    with open(output, "a", encoding="utf-8") as file:  # a batch half-written when the kill came
        file.write("doc-12,positive,0.5")
    result = label_corpus(model, source, output, batch_size=4, threads=3)
    assert result.resumed_from == 12 and result.rows == len(TEXTS) - 12
    assert output.read_bytes() == complete.read_bytes()


def test_another_job_or_a_finished_output_is_not_continued(gru_export, tmp_path):
    model, source = gru_export / "litert" / "model.tflite", _jsonl(tmp_path / "in.jsonl")
    output = tmp_path / "labels.jsonl"

    def kill(rows, *_):
        raise Killed

    with pytest.raises(Killed):
        label_corpus(model, source, output, batch_size=4, threads=1, progress=kill)
    with pytest.raises(LabellingError, match="another job's partial output .*model"):
        label_corpus(gru_export / "onnx" / "model.onnx", source, output)
    with pytest.raises(LabellingError, match="another job's partial output .*long_documents"):
        label_corpus(model, source, output, long_documents=True)
    label_corpus(model, source, output, batch_size=4, threads=1)
    with pytest.raises(LabellingError, match="exists and is complete.*--overwrite"):
        label_corpus(model, source, output)
    assert label_corpus(model, source, output, overwrite=True).rows == len(TEXTS)


def test_inputs_read_like_training_data(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbffirst line\nsecond, line\n")
    assert list(read_records(tmp_path / "a.txt")) == [(1, "first line"), (2, "second, line")]
    # A legacy 8-bit file (no UTF-8 in it, as rt-polarity) is cp1252, as training reads it.
    (tmp_path / "legacy.txt").write_bytes(b"plain\ncaf\xe9 \x93quoted\x94\n")
    assert list(read_records(tmp_path / "legacy.txt")) == [(1, "plain"), (2, "café “quoted”")]
    (tmp_path / "a.tsv").write_text('text\tid\n"two\nlines"\tx\nplain\ty\n', encoding="utf-8")
    assert list(read_records(tmp_path / "a.tsv")) == [("x", "two\nlines"), ("y", "plain")]
    (tmp_path / "b.csv").write_text("text,label\nfine,1\n", encoding="utf-8")
    assert list(read_records(tmp_path / "b.csv")) == [(1, "fine")]


def test_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "bad.txt").write_bytes("naïve\n".encode() + b"caf\xe9\n")
    with pytest.raises(LabellingError, match=r"bad.txt: line 2 is not valid UTF-8 \(byte 10\), yet the file holds UTF-8"):
        list(read_records(tmp_path / "bad.txt"))
    with pytest.raises(LabellingError, match=r"line 1 is not valid ascii \(byte 2\); pass --encoding"):
        list(read_records(tmp_path / "bad.txt", encoding="ascii"))
    (tmp_path / "wide.txt").write_bytes("text\n".encode("utf-16"))
    with pytest.raises(LabellingError, match="UTF-16 or UTF-32"):
        list(read_records(tmp_path / "wide.txt"))
    (tmp_path / "dup.csv").write_text("text,label,text\na,1,b\n", encoding="utf-8")
    with pytest.raises(LabellingError, match="names column 'text' twice"):
        list(read_records(tmp_path / "dup.csv"))
    (tmp_path / "short.csv").write_text("id,text\n1\n", encoding="utf-8")
    with pytest.raises(LabellingError, match="line 2: 1 fields, the header has 2"):
        list(read_records(tmp_path / "short.csv"))
    (tmp_path / "x.jsonl").write_text('{"body": "a"}\n', encoding="utf-8")
    with pytest.raises(LabellingError, match="line 1: expected an object with a string 'text' field"):
        list(read_records(tmp_path / "x.jsonl"))
    os.mkfifo(tmp_path / "fifo.txt")
    with pytest.raises(LabellingError, match="not a regular file"):
        list(read_records(tmp_path / "fifo.txt"))
    with pytest.raises(LabellingError, match="expected an output ending in .jsonl, .csv or .tsv"):
        label_corpus("any.tflite", tmp_path / "bad.txt", tmp_path / "out.parquet")


@pytest.mark.slow
def test_bulk_labelling_benchmark_measures_each_artifact_and_the_fasttext_peer(gru_export, tmp_path):
    from benchmarks import bulk_labelling

    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": text, "label": int(label)}) + "\n"
                            for text, label in zip(helpers.TEXTS * 5, list(helpers.LABELS) * 5)), encoding="utf-8")
    assert set(bulk_labelling.artifacts(gru_export)) == {"saved_model (text)", "litert float32", "onnxruntime float32"}
    # Two sides (each corpus and side is a fresh process): zoo's LiteRT file and the fastText peer.
    results = bulk_labelling.measure(gru_export, sizes=(300, 600), long_size=20, threads=2, data=data,
                                     scratch=tmp_path / "scratch", only=("litert float32", "fasttext bigrams (peer)"))
    sides = {row["artifact"] for row in results["rows"]}
    assert sides == {"litert float32", "fasttext bigrams (peer)"}
    for row in results["rows"]:
        expected = {"300 short": 300, "600 short": 600, "20 long": 20}[row["corpus"]]
        assert row["rows"] == expected and row["texts_per_second"] > 0 and row["max_rss_mb"] > 0, row
    table = bulk_labelling.markdown_table(results).splitlines()
    assert "| artifact | accuracy | 300 short | 600 short | 20 long |" in table
    peer_row = next(line for line in table if line.startswith("| fasttext bigrams (peer) |"))
    assert peer_row.count("(1.0x)") == 3  # the peer against itself on each corpus
    litert_row = next(line for line in table if line.startswith("| litert float32 |"))
    assert f"{results['model_accuracy']['litert float32']:.1%}" in litert_row and litert_row.count("x) / ") == 3


@pytest.mark.slow
def test_zoo_predict_labels_a_file_or_stdin(gru_export, tmp_path):
    import subprocess
    import sys

    model = gru_export / "onnx" / "model.onnx"
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")

    def zoo(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "zoo", "predict", str(model), *map(str, args)], input=stdin,
                              capture_output=True, text=True, timeout=300)

    to_file = zoo("--input", tmp_path / "texts.txt", "--output", tmp_path / "labels.csv", "--threads", 2)
    assert to_file.returncode == 0, to_file.stderr
    assert f"labelled {len(TEXTS)} texts" in to_file.stderr
    rows = _rows(tmp_path / "labels.csv")
    assert [row["id"] for row in rows] == [str(i) for i in range(1, len(TEXTS) + 1)]  # line numbers
    piped = zoo("--input", "-", stdin="a great film\na dull film\n")
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(line)["id"] for line in piped.stdout.splitlines()] == [1, 2]
    both = zoo("a text", "--input", tmp_path / "texts.txt")
    assert both.returncode == 2 and "not both" in both.stderr
    long = " ".join(TEXTS)
    whole = zoo(long, "a great film", "--long-documents", "--json")
    assert whole.returncode == 0, whole.stderr
    from zoo.runtime import load

    expected = load(model).predict_documents([long, "a great film"]).max(axis=1)
    assert [json.loads(line)["probability"] for line in whole.stdout.splitlines()] == pytest.approx(expected, abs=1e-5)


def test_a_runner_that_sorts_by_length_still_writes_input_order_batch_by_batch(gru_export, tmp_path):
    import zoo.runtime

    model = gru_export / "onnx" / "model.onnx"
    runner = zoo.runtime.load(model)
    assert runner.any_length  # the ONNX file takes each batch padded to its longest text
    words = " ".join(helpers.TEXTS).split()
    # Very mixed lengths, long and short alternating, some past the window, one empty.
    texts = [" ".join(words[: (i * 37) % 90]) for i in range(70)]
    output, batches_done = tmp_path / "labels.csv", []
    label_corpus(model, _jsonl(tmp_path / "in.jsonl", texts), output, batch_size=3, threads=2, probabilities=True,
                 progress=lambda rows, *_: batches_done.append(rows))
    rows = _rows(output)
    assert [row["id"] for row in rows] == [f"doc-{i}" for i in range(len(texts))]
    assert batches_done == [*range(3, len(texts), 3), len(texts)]  # progress after every batch, as before
    # Each text's probabilities as the whole window gives them, one text a call.
    expected = np.concatenate([runner.predict_token_ids(runner.tokenizer.encode([text]), trim_padding=False)
                               for text in texts])
    np.testing.assert_allclose([float(row["p:positive"]) for row in rows], expected[:, 1], atol=2e-6)
