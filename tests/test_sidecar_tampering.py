"""A tampered sidecar, or a text that is not valid UTF-8, gets one defined answer (issue 15).

Sidecars: whatever a field holds, opening and running a file gives either
the right answer or a `SidecarError` / `VerificationError` naming the sidecar
and the field; never an IndexError, MemoryError or RecursionError from deep
inside a runner. The tampering is property-based (hypothesis) over every
field of a classifier's LiteRT and ONNX sidecars and a GPT-2 decoder's.

Invalid UTF-8: every runtime reads each maximal invalid sequence as U+FFFD
(Keras, the SavedModel TF Serving runs, and zoo.runtime on LiteRT and ONNX).
"""

import copy
import hashlib
import json
import pathlib
import re
import shutil

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import tensorflow as tf

from zoo.runtime import Generator, TextClassifierRunner
from zoo.runtime.sidecar import SidecarError
from zoo.runtime.verify import VerificationError


@pytest.fixture(scope="module")
def exports(tiny_gru, gru_export, gpt2_export):
    return {"classifier": tiny_gru, "classifier_dir": gru_export,
            "files": {"litert": gru_export / "litert" / "model.tflite", "onnx": gru_export / "onnx" / "model.onnx",
                      "decoder": gpt2_export / "litert" / "model.tflite"}}


RUNS = {
    "litert": lambda path: TextClassifierRunner(path, verify=False).predict(["a great film", "", "zzz"]),
    "onnx": lambda path: TextClassifierRunner(path, verify=False).predict(["a great film", "zzz"]),
    "decoder": lambda path: Generator(path, verify=False).generate("ROMEO:", max_length=8),
}


def field_paths(node, prefix=()):
    """Every field of a sidecar (lists: their first and last entry), as key paths."""
    yield prefix
    children = node.items() if isinstance(node, dict) else (
        [(0, node[0]), (len(node) - 1, node[-1])] if isinstance(node, list) and node else [])
    for key, child in children:
        yield from field_paths(child, prefix + (key,))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([10**12, 2**31, 2.5, float("1e308")])
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
)
DELETE = object()


def tampered(spec, path, value):
    spec = copy.deepcopy(spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_any_tampered_field_is_refused_by_name_or_still_runs(exports, kind, tmp_path_factory):
    source = exports["files"][kind]
    original = json.loads(source.with_suffix(".json").read_text())
    paths = [path for path in field_paths(original) if path]
    work = tmp_path_factory.mktemp(f"tampered-{kind}")
    model_path = work / source.name
    shutil.copy(source, model_path)
    outcomes = set()

    @hypothesis.settings(max_examples=120, deadline=None, derandomize=True,
                         suppress_health_check=[hypothesis.HealthCheck.too_slow])
    @hypothesis.given(st.sampled_from(paths), st.one_of(JSON_VALUES, st.just(DELETE)))
    def check(path, value):
        model_path.with_suffix(".json").write_text(json.dumps(tampered(original, path, value)))
        try:
            RUNS[kind](model_path)
            outcomes.add("ran")
        except (SidecarError, VerificationError) as error:
            assert str(error).startswith(str(model_path.with_suffix(".json"))), error
            assert "\n" not in str(error)
            outcomes.add(type(error).__name__)

    check()
    assert "SidecarError" in outcomes  # the property was exercised, not vacuous


@pytest.mark.parametrize("kind, path, value, message", [
    ("litert", ("signatures", "serving_default", "inputs"), [], r"field 'signatures.serving_default.inputs': expected a non-empty list"),
    ("onnx", ("tokenizer", "vocabulary"), ["[PAD]", "[UNK]", "a", "a"], r"expected no repeated entries, got 'a' twice"),
    ("litert", ("labels",), ["neg"], r"field 'labels': 1 labels, but the model file outputs 2 classes"),
    ("decoder", ("generation", "prefill_length"), 10**12, r"field 'generation.prefill_length': expected an integer in \[1, cache_length=64\]"),
    ("decoder", ("generation", "start_token_id"), 10**12, r"field 'generation.start_token_id': expected a token id"),
    ("decoder", ("generation", "cache_length"), 32, r"field 'generation.cache_length': 32, but the model file's cache holds 64"),
    ("decoder", ("signatures", "decode", "inputs"), [
        {"name": "cache_keys_0", "dtype": "float32", "shape": [1, 2, 64, 16]},
        {"name": "cache_values_0", "dtype": "float32", "shape": [1, 2, 64, 16]},
        {"name": "token_id", "dtype": "int32", "shape": [1, 1]}],
     r"field 'signatures.decode.inputs': the model file's tensors are "
     r"\['cache_keys_0', 'cache_values_0', 'position', 'token_id'\]"),
    ("decoder", ("generation", "cache_inputs"), [["cache_keys_0", "cache_keys_0"]],
     r"field 'generation.cache_inputs': expected no repeated entries, got 'cache_keys_0' twice"),
    ("decoder", ("generation", "cache_inputs"), [["cache_keys_9", "cache_values_9"]],
     r"field 'signatures.prefill.inputs': expected the cache inputs of 'generation.cache_inputs', got none named "
     r"'cache_keys_9'"),
])
def test_the_crashes_found_by_hand_are_now_named_errors(exports, kind, path, value, message, tmp_path):
    """Each of these was an IndexError, MemoryError, OverflowError or a wrong answer before."""
    source = exports["files"][kind]
    shutil.copy(source, tmp_path / source.name)
    spec = tampered(json.loads(source.with_suffix(".json").read_text()), path, value)
    (tmp_path / source.name).with_suffix(".json").write_text(json.dumps(spec))
    with pytest.raises((SidecarError, VerificationError), match=message):
        RUNS[kind](tmp_path / source.name)


def test_a_deeply_nested_or_huge_sidecar_is_refused_without_recursion(exports, tmp_path):
    source = exports["files"]["litert"]
    shutil.copy(source, tmp_path / "model.tflite")
    (tmp_path / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SidecarError, match="nested too deeply"):
        TextClassifierRunner(tmp_path / "model.tflite", verify=False)


INVALID_UTF8 = [b"caf\xc3\xa9 great\xff film", b"\xc3", b"a great \xed\xa0\x80 film", b"\xf0\x9f\x98 dull", b""]


def test_invalid_utf8_reads_as_u_fffd_in_keras_savedmodel_and_every_runner(exports):
    model, version = exports["classifier"], exports["classifier_dir"]
    replaced = [text.decode("utf-8", "replace") for text in INVALID_UTF8]
    keras_bytes = model.predict(tf.constant(INVALID_UTF8), verbose=0)
    np.testing.assert_allclose(keras_bytes, model.predict(tf.constant(replaced), verbose=0), atol=1e-6)
    serving = tf.saved_model.load(str(version)).signatures["serving_default"]
    saved_model = serving(text=tf.constant(INVALID_UTF8))["probabilities"].numpy()
    np.testing.assert_allclose(saved_model, keras_bytes, atol=1e-5)
    for kind in ("litert", "onnx"):
        runner = TextClassifierRunner(exports["files"][kind])
        np.testing.assert_allclose(runner.predict(INVALID_UTF8), keras_bytes, atol=1e-5)
        np.testing.assert_allclose(runner.predict(replaced), keras_bytes, atol=1e-5)
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a text \(str or UTF-8 bytes\), got int"):
        runner.predict(["fine", 3])


@pytest.fixture(scope="module")
def litert_runner(exports):
    # One interpreter for every example: hypothesis calls the test body many times.
    return TextClassifierRunner(exports["files"]["litert"])


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(st.lists(st.binary(max_size=24) | st.text(max_size=12), min_size=1, max_size=6))
def test_runners_equal_keras_on_arbitrary_bytes_and_text(exports, litert_runner, texts):
    keras_probabilities = exports["classifier"].predict(tf.constant(texts), verbose=0)
    probabilities = litert_runner.predict(texts)
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-5)


# === What `zoo verify` and the runners' load-time check read (issue 27, item 8) ===

def copied_version(gru_export, tmp_path):
    version = tmp_path / "serving" / "gru_classifier" / "1"
    shutil.copytree(gru_export, version, symlinks=True)
    return version


def zoo_verify(version, capsys):
    """`zoo verify DIR` in this process: (exit status, its one error line or its report)."""
    from zoo import cli

    status = cli.main(["verify", str(version)])
    captured = capsys.readouterr()
    return status, (captured.err or captured.out).strip()


def add_to_manifest(version, entry, path):
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"][entry] = hashlib.sha256(path.read_bytes()).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("entry", ["../outside.bin", "ABSOLUTE", "litert/../../outside.bin", "./export_report.json"])
def test_zoo_verify_refuses_manifest_entries_outside_the_version(gru_export, tmp_path, capsys, entry):
    version = copied_version(gru_export, tmp_path)
    outside = version.parent / "outside.bin"
    outside.write_bytes(b"not part of the version")
    entry = str(outside) if entry == "ABSOLUTE" else entry
    add_to_manifest(version, entry, version / entry)
    status, message = zoo_verify(version, capsys)
    assert status != 0
    assert message == (f"zoo verify: error: {version / 'manifest.json'}: field 'files': entry {entry!r}: expected a "
                       "relative path inside the version folder")


def test_zoo_verify_does_not_read_the_source_path_the_manifest_names(gru_export, tmp_path, capsys):
    version = copied_version(gru_export, tmp_path)
    elsewhere = tmp_path / "somebody_elses.keras"
    elsewhere.write_bytes(b"changed since")
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["source"] = {"path": str(elsewhere), "sha256": "0" * 64}
    (version / "manifest.json").write_text(json.dumps(manifest))
    status, message = zoo_verify(version, capsys)
    assert status == 0 and message.endswith("2 sidecars match their model files"), message


@pytest.mark.parametrize("linked", ["litert/model.tflite", "litert"])
def test_a_symlink_in_a_version_is_refused_by_zoo_verify_and_on_load(gru_export, tmp_path, capsys, linked):
    version = copied_version(gru_export, tmp_path)
    target = tmp_path / "elsewhere" / pathlib.Path(linked).name
    target.parent.mkdir()
    shutil.move(version / linked, target)  # the same bytes: only the link is wrong
    (version / linked).symlink_to(target)
    expected = f"{version / linked}: a symlink inside an exported version"
    status, message = zoo_verify(version, capsys)
    assert status != 0 and message.startswith(f"zoo verify: error: {expected}"), message
    with pytest.raises(VerificationError, match=re.escape(expected)):
        TextClassifierRunner(version / "litert" / "model.tflite")


def test_a_version_without_its_manifest_does_not_load_but_a_lone_file_does(gru_export, tmp_path, capsys):
    version = copied_version(gru_export, tmp_path)
    (version / "manifest.json").unlink()
    with pytest.raises(VerificationError, match=re.escape(f"{version / 'manifest.json'}: missing, so ")):
        TextClassifierRunner(version / "litert" / "model.tflite")
    assert zoo_verify(version, capsys)[1] == (f"zoo verify: error: {version / 'manifest.json'}: no manifest (is this "
                                              "an exported version folder?)")
    expected = TextClassifierRunner(gru_export / "litert" / "model.tflite").predict(["a great film"])
    unchecked = TextClassifierRunner(version / "litert" / "model.tflite", verify=False).predict(["a great film"])
    np.testing.assert_array_equal(unchecked, expected)
    # A format's single file outside any version folder (e.g. on a phone) has nothing to be checked against.
    alone = tmp_path / "phone"
    alone.mkdir()
    for name in ("model.tflite", "model.json"):
        shutil.copy(gru_export / "litert" / name, alone / name)
    np.testing.assert_array_equal(TextClassifierRunner(alone / "model.tflite").predict(["a great film"]), expected)
