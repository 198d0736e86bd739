"""Bad input gets one clear error before any work; nothing silently wrong; nothing left behind (issue 15, part)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import zoo
from tests import helpers
from tests.test_cli import error_line, run_zoo
from zoo.data import DataError, load_texts
from zoo.runtime.generator import check_generation_arguments


def test_an_unquoted_comma_is_an_error_naming_the_line_not_a_new_class(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\na fine film,pos\nloved it, truly,pos\n")
    with pytest.raises(DataError, match=r"reviews.csv:3: row has 3 fields but the header has 2; quote fields"):
        load_texts(path)


def test_a_field_over_128_kib_loads(tmp_path):
    path = tmp_path / "long.csv"
    long_text = "word " * 60_000  # 300 KiB, past csv's default field limit
    path.write_text(f"text,label\n\"{long_text}\",pos\nshort,neg\n")
    assert len(load_texts(path).texts[0]) == len(long_text)


def test_sparse_integer_labels_are_two_classes_not_eight(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("text,label\na,3\nb,7\nc,3\n")
    dataset = load_texts(path)
    assert (dataset.class_names, dataset.labels.tolist()) == (("3", "7"), [0, 1, 0])


def test_fit_without_adapt_and_bare_strings_are_errors_and_empty_batches_are_defined():
    model = zoo.create_model("gru_classifier", **helpers.tiny_config("gru_classifier"))
    with pytest.raises(ValueError, match="call model.adapt"):
        model.fit(helpers.TEXTS, helpers.LABELS, epochs=1, verbose=0)
    model.adapt(helpers.TEXTS)
    with pytest.raises(TypeError, match="not one string"):
        model.predict_labels("one text")
    with pytest.raises(TypeError, match="not one string"):
        model.predict("one text")
    assert model.predict([]).shape == (0, 2) and model.predict_labels([]) == []


@pytest.mark.parametrize("key, value", [("num_layers", 0), ("learning_rate", -1), ("dropout", 1.5),
                                        ("hidden_dim", 2.5), ("vocabulary_size", 2), ("num_classes", 1)])
def test_config_ranges_are_checked_by_zoo_key(key, value):
    with pytest.raises(ValueError, match=rf"lstm_classifier: {key} must be"):
        zoo.create_model("lstm_classifier", **{key: value})


@pytest.mark.parametrize("arguments, message", [
    ({"temperature": 0}, "temperature must be a number > 0"), ({"temperature": -1.0}, "temperature"),
    ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\]"), ({"top_k": 0}, "top_k must be an integer >= 1"),
    ({"max_length": 0}, "max_length must be an integer >= 2"), ({"max_length": -5}, "max_length"),
    ({"num_beams": 0}, "num_beams"), ({"sampler": "nucleus"}, "sampler must be one of"),
])
def test_generation_arguments_have_one_set_of_rules(arguments, message):
    with pytest.raises(ValueError, match=message):
        check_generation_arguments(**arguments)


def test_keras_generate_checks_the_same_rules_before_work():
    from zoo.causal_lm import generate

    model = helpers.build_tiny("gpt2_tiny")
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        generate(model, ["ROMEO:"], max_length=16, sampler="top_k", temperature=0)
    with pytest.raises(ValueError, match="past the model's context"):
        generate(model, ["ROMEO:"], max_length=10_000)


@pytest.mark.slow
@pytest.mark.parametrize("option, value", [("--epochs", 0), ("--batch-size", 0), ("--patience", -1)])
def test_cli_training_arguments_fail_in_one_line_before_any_work(option, value, tmp_path):
    line = error_line(run_zoo("train", "lstm_classifier", option, value, "--out", tmp_path / "m"))
    assert f"must be an integer >= {0 if option == '--patience' else 1}" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_plain_keras_model_given_to_predict_is_one_line(tmp_path):
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "plain.keras")
    line = error_line(run_zoo("predict", tmp_path / "plain.keras", "some text"))
    assert "is not a text classifier" in line


@pytest.mark.slow
def test_exported_versions_are_readable_by_a_serving_user(tmp_path):
    from zoo.export import export

    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    umask = os.umask(0o022)
    try:
        result = export(model, root=tmp_path, formats=("saved_model", "litert"), variants=(),
                        validation_data=helpers.TEXTS)
    finally:
        os.umask(umask)
    assert oct(result.path.stat().st_mode & 0o777) == "0o755"
    for path in result.path.rglob("*"):
        assert (path.stat().st_mode & 0o777) == (0o755 if path.is_dir() else 0o644), path


@pytest.mark.slow
def test_leftovers_of_a_killed_export_are_removed_by_the_next(tmp_path):
    from zoo.export import export

    base = tmp_path / "gru_classifier"
    dead = base / ".tmp-1-999999-abc"  # no such process
    live = base / f".tmp-1-{os.getpid()}-xyz"  # an export still running (this process)
    dead.mkdir(parents=True)
    live.mkdir()
    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    export(model, root=tmp_path, formats=("litert",), variants=(), validation_data=helpers.TEXTS)
    assert not dead.exists() and live.exists()


@pytest.mark.slow
def test_sigterm_during_an_export_leaves_nothing(tmp_path):
    marker = tmp_path / "converting"
    script = textwrap.dedent(f"""
        import sys, time, pathlib
        sys.path.insert(0, {os.getcwd()!r})
        from tests import helpers
        from zoo.export import export
        from zoo.export.formats import litert
        def slow_convert(*args, **kwargs):
            pathlib.Path({str(marker)!r}).write_text("x")
            time.sleep(120)
        litert.convert = slow_convert
        model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
        export(model, root={str(tmp_path / "serving")!r}, formats=("saved_model", "litert"), variants=(),
               validation_data=helpers.TEXTS)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in process.stderr.read()
    assert [path.name for path in (tmp_path / "serving" / "gru_classifier").iterdir()] == []


def test_concurrent_exports_claim_distinct_versions(tmp_path):
    from zoo.export import ExportError, publish

    base = tmp_path / "model"
    with publish.claimed_version(base, None, False) as first:
        # Another export starting meanwhile (a claim held by a live process) takes the next version.
        with publish.claimed_version(base, None, False) as second:
            assert (first, second) == (1, 2)
        (base / ".claim-3").mkdir()
        (base / ".claim-3" / "pid").write_text(str(os.getppid()))  # alive, not this process
        with pytest.raises(ExportError, match="is being exported right now"):
            with publish.claimed_version(base, 3, False):
                pass
    (base / ".claim-1").mkdir()
    (base / ".claim-1" / "pid").write_text("999999")  # a dead claimant's claim is taken over
    (base / ".claiming-999999-abcd").mkdir()  # a claimant killed before its rename: removed
    with publish.claimed_version(base, None, False) as again:
        assert again == 1
        assert (base / ".claim-1" / "pid").read_text() == str(os.getpid())
    assert sorted(path.name for path in base.iterdir()) == [".claim-3"]


def copy_version(version, tmp_path):
    import shutil

    copy = tmp_path / "gru_classifier" / "1"
    shutil.copytree(version, copy)
    return copy


@pytest.mark.slow
def test_zoo_verify_passes_an_untouched_version(gru_export):
    checked = run_zoo("verify", gru_export)
    assert checked.returncode == 0, checked.stderr
    assert "files match manifest.json; 2 sidecars match their model files" in checked.stdout


def test_a_flipped_bit_a_reordered_vocabulary_and_a_stray_file_are_caught(gru_export, tmp_path):
    import json

    from zoo.runtime import TextClassifierRunner
    from zoo.runtime.verify import VerificationError

    version = copy_version(gru_export, tmp_path)
    model = version / "litert" / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    assert "model.tflite: sha256 differs" in error_line(run_zoo("verify", version))
    with pytest.raises(VerificationError, match="model.tflite: sha256 differs"):
        TextClassifierRunner(model)

    version = copy_version(gru_export, tmp_path / "b")
    sidecar = version / "onnx" / "model.json"
    spec = json.loads(sidecar.read_text())
    spec["tokenizer"]["vocabulary"][2:4] = spec["tokenizer"]["vocabulary"][3:1:-1]
    sidecar.write_text(json.dumps(spec))
    with pytest.raises(VerificationError, match=r"onnx/model.json: sha256 differs"):
        TextClassifierRunner(version / "onnx" / "model.onnx")

    version = copy_version(gru_export, tmp_path / "c")
    (version / "litert" / "extra.bin").write_bytes(b"x")
    assert "extra.bin: not listed in manifest.json" in error_line(run_zoo("verify", version))


def test_a_sidecar_that_does_not_fit_its_model_file_is_refused_even_without_a_manifest(gru_export, tmp_path):
    import json
    import shutil

    from zoo.runtime import TextClassifierRunner
    from zoo.runtime.verify import VerificationError

    shutil.copy(gru_export / "litert" / "model.tflite", tmp_path / "model.tflite")
    spec = json.loads((gru_export / "litert" / "model.json").read_text())
    spec["labels"] = ["a", "b", "c"]
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(VerificationError, match=r"field 'labels': 3 labels, but the model file outputs 2"):
        TextClassifierRunner(tmp_path / "model.tflite")
    spec = json.loads((gru_export / "litert" / "model.json").read_text())
    spec["tokenizer"]["sequence_length"] = 7
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(VerificationError, match=r"field 'tokenizer.sequence_length': 7"):
        TextClassifierRunner(tmp_path / "model.tflite")


# === Property-based: loaders ===

import hypothesis  # noqa: E402
import hypothesis.strategies as st  # noqa: E402

REVIEW_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                      max_size=40)
ROWS = st.lists(st.tuples(REVIEW_TEXT, st.sampled_from(["neg", "pos", "meh"])), min_size=2, max_size=12).filter(
    lambda rows: len({label for _, label in rows}) >= 2)


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(ROWS, st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_any_rows_written_by_csv_or_json_load_back_exactly(tmp_path_factory, rows, suffix):
    import csv
    import io
    import json

    path = tmp_path_factory.mktemp("rows") / f"data{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows))
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t" if suffix == ".tsv" else ",")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    dataset = load_texts(path)
    assert list(dataset.texts) == [text for text, _ in rows]
    assert [dataset.class_names[i] for i in dataset.labels] == [label for _, label in rows]


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
                  | st.sampled_from([b"text,label\n" + b"[" * 5000, b'{"text": ' + b"[" * 3000 + b"\n",
                                     b'{"text": "a", "label": {"x": 1}}\n{"text": "b", "label": [2]}\n']),
                  st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_any_file_content_loads_or_is_one_data_error_naming_the_file(tmp_path_factory, content, suffix):
    path = tmp_path_factory.mktemp("junk") / f"data{suffix}"
    path.write_bytes(content)
    try:
        load_texts(path)
    except DataError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error), error


# === One answer for the same bad input, whichever path runs it ===

@pytest.mark.slow
@pytest.mark.parametrize("arguments, message", [
    ({"sampler": "top_k", "top_k": 100_000}, r"top_k must be at most the vocabulary size \(320\), got 100000"),
    ({"max_length": 8, "prompts": ["ROMEO: " * 6]}, r"prompt 0 has \d+ tokens \(start token included\); max_length 8"),
    ({"max_length": 12, "prompts": ["a", "ROMEO: " * 6]}, r"prompt 1 has \d+ tokens"),
    ({"sampler": "top_p", "temperature": 0}, "temperature must be a number > 0, got 0"),
    ({"max_length": 1}, "max_length must be an integer >= 2"),
])
def test_keras_and_litert_generation_refuse_the_same_arguments_with_the_same_message(tiny_gpt2, gpt2_export,
                                                                                     arguments, message):
    from zoo.causal_lm import generate
    from zoo.runtime import Generator

    model, decoder = tiny_gpt2, gpt2_export / "litert" / "model.tflite"
    arguments = dict({"prompts": ["ROMEO:"], "max_length": 16, "sampler": "greedy"}, **arguments)
    prompts = arguments.pop("prompts")
    errors = []
    for run in (lambda: generate(model, prompts, **arguments), lambda: Generator(decoder).generate(prompts, **arguments)):
        with pytest.raises(ValueError, match=message) as error:
            run()
        errors.append(str(error.value))
    assert errors[0] == errors[1]


@pytest.mark.slow
def test_an_output_folder_under_a_file_and_a_truncated_keras_file_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    line = error_line(run_zoo("train", "gru_classifier", "--out", tmp_path / "afile" / "m", "--epochs", 1))
    assert line == f"zoo train: error: out_dir {tmp_path}/afile/m: {tmp_path}/afile is a file, expected a folder"
    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    model.save(tmp_path / "model.keras")
    line = error_line(run_zoo("export", tmp_path / "model.keras", "--root", tmp_path / "afile" / "serving"))
    assert f"{tmp_path}/afile is a file, expected a folder" in line
    (tmp_path / "cut.keras").write_bytes((tmp_path / "model.keras").read_bytes()[:20_000])
    for command in ("predict", "evaluate"):
        line = error_line(run_zoo(command, tmp_path / "cut.keras", *(["some text"] if command == "predict" else [])))
        assert line.endswith("cut.keras: not a .keras archive (a zip file); it is truncated or corrupt"), line


@pytest.mark.slow
def test_safe_mode_refuses_a_lambda_model_and_runs_none_of_its_code(tmp_path):
    marker = tmp_path / "code-ran"
    # The path is a constant of the function's bytecode, which Keras stores in the .keras file.
    payload = eval(f"lambda x: x + 0 * len(open({str(marker)!r}, 'w').name)")
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Lambda(payload)(inputs))
    path = tmp_path / "evil.keras"
    model.save(path)
    marker.unlink()  # written while the model was built here

    from zoo.saving import load_model

    with pytest.raises(ValueError, match="Lambda"):
        load_model(path)
    refused = run_zoo("predict", path, "a text")
    assert refused.returncode == 2 and "Lambda" in error_line(refused), refused.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_memory_is_flat_and_outputs_bit_identical_over_60000_runner_calls(gru_export):
    from zoo.runtime import TextClassifierRunner

    def resident_bytes():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    runner = TextClassifierRunner(gru_export / "litert" / "model.tflite")
    texts = ["a great film", "the plot is a tedious mess", ""]
    first = [runner.predict([text]) for text in texts]
    for call in range(5_000):  # allocator and interpreter caches reach their steady size
        runner.predict([texts[call % 3]])
    before = resident_bytes()
    for call in range(60_000):
        assert np.array_equal(runner.predict([texts[call % 3]]), first[call % 3]), call
    grown = resident_bytes() - before
    # 60,000 calls: even a 64-byte leak per call would show as 3.8 MB.
    assert grown < 2 * 2**20, f"resident memory grew {grown / 2**20:.1f} MiB over 60,000 calls"
