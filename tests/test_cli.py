"""The `zoo` command line, run as a user would: in a subprocess."""

import json
import subprocess
import sys

import pytest

from tests import helpers

# Every test here trains, exports or starts processes: `make check` leaves them out.
pytestmark = pytest.mark.slow

TINY = ["--set", "vocabulary_size=64", "--set", "embedding_dim=8", "--set", "hidden_dim=8", "--set", "learning_rate=0.01"]


def run_zoo(*args, cwd=None):
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    return result


def error_line(result):
    """The user-facing error: exit status 2 and exactly one `zoo ...: error:` line."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def library_logs(result):
    """TensorFlow's, LiteRT's and absl's own lines on stderr (zoo keeps them off without --verbose)."""
    from zoo.quiet import is_noise

    return [line for line in result.stderr.splitlines() if is_noise(line) or line.startswith("WARNING:")]


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    rows = [(text, "positive" if label else "negative") for text, label in zip(helpers.TEXTS * 3, list(helpers.LABELS) * 3)]
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return path


def test_list_and_info():
    listing = run_zoo("list")
    assert listing.returncode == 0, listing.stderr
    for name in ["simple_rnn_classifier", "lstm_classifier", "bilstm_classifier", "gru_classifier", "transformer_classifier"]:
        assert name in listing.stdout
    only_gru = run_zoo("list", "*gru*").stdout.split()
    assert "gru_classifier" in only_gru and "lstm_classifier" not in only_gru
    info = json.loads(run_zoo("info", "transformer_classifier").stdout)
    assert info["family"] == "transformer" and info["default_config"]["num_heads"] == 4


def test_train_evaluate_predict(tiny_csv, tmp_path):
    out = tmp_path / "model"
    train = run_zoo("train", "lstm_classifier", "--data", tiny_csv, "--epochs", 3, "--batch-size", 8, "--out", out, *TINY)
    assert train.returncode == 0, train.stderr
    assert not library_logs(train), train.stderr
    assert "validation accuracy:" in train.stdout and "confusion matrix" in train.stdout
    assert (out / "model.keras").is_file()
    report = json.loads((out / "train_report.json").read_text())
    assert report["data"]["class_names"] == ["negative", "positive"]
    confusion = report["validation"]["confusion_matrix"]
    assert report["epochs_run"] >= 1 and sum(map(sum, confusion)) == report["data"]["validation_examples"]
    assert report["validation"]["accuracy"] == sum(confusion[i][i] for i in range(2)) / sum(map(sum, confusion))

    evaluate = run_zoo("evaluate", out, "--data", tiny_csv, "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    metrics = json.loads(evaluate.stdout)
    assert sum(map(sum, metrics["confusion_matrix"])) == len(helpers.TEXTS) * 3
    assert set(metrics["per_class"]) == {"negative", "positive"}
    table = run_zoo("evaluate", out / "model.keras", "--data", tiny_csv, "--split", "validation")
    assert "precision" in table.stdout and "split: validation" in table.stdout

    predict = run_zoo("predict", out, "a great film", "a dull film", "--json")
    assert predict.returncode == 0, predict.stderr
    rows = [json.loads(line) for line in predict.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["a great film", "a dull film"]
    assert all(row["label"] in ("negative", "positive") and 0.5 <= row["probability"] <= 1 for row in rows)

    # Export validates on the split recorded in train_report.json.
    root = tmp_path / "serving"
    exported = run_zoo("export", out, "--root", root, "--variants", "float16")
    assert exported.returncode == 0, exported.stderr
    assert not library_logs(exported), exported.stderr
    assert "exported model version 1" in exported.stdout and "litert float32" in exported.stdout
    version = root / "model" / "1"
    assert (version / "saved_model.pb").is_file() and (version / "litert" / "model.float16.tflite").is_file()
    # Every exported runtime file predicts through zoo.runtime, like the Keras model.
    for exported_file in (version / "litert" / "model.tflite", version / "onnx" / "model.onnx"):
        by_file = run_zoo("predict", exported_file, "a great film", "a dull film", "--json")
        assert by_file.returncode == 0, by_file.stderr
        assert [json.loads(line)["label"] for line in by_file.stdout.splitlines()] == [row["label"] for row in rows]
    export_report = json.loads((version / "export_report.json").read_text())
    assert export_report["validation_examples"] == report["data"]["validation_examples"]
    again = run_zoo("export", out, "--root", root, "--version", 1, "--format", "litert", "--variants", "none")
    assert "already exists" in error_line(again)
    assert run_zoo("export", out, "--root", root, "--name", "sentiment", "--format", "litert",
                   "--variants", "none").returncode == 0
    assert sorted(p.name for p in root.iterdir()) == ["model", "sentiment"]


def test_errors_are_one_line(tiny_csv, tmp_path):
    assert "no such file" in error_line(run_zoo("train", "lstm_classifier", "--data", tmp_path / "missing.csv"))
    assert "did you mean 'lstm_classifier'" in error_line(run_zoo("train", "lstm_clasifier", "--data", tiny_csv))
    assert "unknown option 'hiden_dim'" in error_line(
        run_zoo("train", "lstm_classifier", "--data", tiny_csv, "--set", "hiden_dim=3")
    )
    assert "missing column 'review'" in error_line(
        run_zoo("train", "lstm_classifier", "--data", tiny_csv, "--text-column", "review")
    )
    assert "no trained model" in error_line(run_zoo("predict", tmp_path / "nothing", "text"))


def test_train_and_generate_causal_lm(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"ROMEO: the {w} is sweet, and so is the night." for w in ("rose", "moon", "day") * 30))
    out = tmp_path / "lm"
    train = run_zoo("train", "gpt2_tiny", "--data", corpus, "--epochs", 1, "--batch-size", 4, "--out", out,
                    "--set", "tokenizer=train", "--set", "bpe_vocabulary_size=300", "--set", "sequence_length=32",
                    "--set", "num_layers=1", "--set", "jit_compile=false")
    assert train.returncode == 0, train.stderr
    assert "perplexity" in train.stdout and "tokens/s" in train.stdout
    generated = run_zoo("generate", out, "--prompt", "ROMEO:", "--prompt", "the", "--max-length", 16,
                        "--sampler", "top_k", "--seed", 1, "--json")
    assert generated.returncode == 0, generated.stderr
    rows = [json.loads(line) for line in generated.stdout.splitlines()]
    assert [row["prompt"] for row in rows] == ["ROMEO:", "the"]
    assert all(row["text"].startswith(row["prompt"]) for row in rows)
    assert "invalid choice: 'nucleus'" in error_line(run_zoo("generate", out, "--prompt", "x", "--sampler", "nucleus"))

    exported = run_zoo("export", out, "--root", tmp_path / "serving", "--cache-length", 32, "--prompt", "ROMEO:")
    assert exported.returncode == 0, exported.stderr
    assert "exported lm version 1" in exported.stdout and "litert dynamic_int8" in exported.stdout
    decoder = tmp_path / "serving" / "lm" / "1" / "litert" / "model.tflite"
    keras_greedy = run_zoo("generate", out, "--prompt", "ROMEO: the", "--max-length", 20, "--json")
    litert_greedy = run_zoo("generate", decoder, "--prompt", "ROMEO: the", "--max-length", 20, "--json")
    assert litert_greedy.returncode == 0, litert_greedy.stderr
    assert json.loads(litert_greedy.stdout)["text"].startswith("ROMEO: the")
    # Same tokens; the text can differ only where a token ends inside a UTF-8 character.
    assert json.loads(litert_greedy.stdout)["text"].replace("\ufffd", "") == \
        json.loads(keras_greedy.stdout)["text"].replace("\ufffd", "")
