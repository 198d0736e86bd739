"""zoo.export: versions, atomicity, refusal of non-builtin ops, TF Serving details.

Every registered classifier also runs `helpers.run_export_test` in
tests/models/test_models.py; these tests cover the machinery once.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from zoo.export import ExportError, RuntimeCrash, export, isolation
from zoo.export.architectures import recipe_for
from zoo.export.formats import litert, saved_model
from zoo.export.tasks import task_for, text_classification
from zoo.export.tasks.text_classification import with_full_windows

VALIDATION = (helpers.TEXTS, helpers.LABELS)


@pytest.fixture(scope="module")
def model(tiny_gru):
    return tiny_gru


def fast_export(model, root, **kwargs):
    kwargs.setdefault("variants", ())
    kwargs.setdefault("formats", ("saved_model", "litert"))
    return export(model, root=root, validation_data=VALIDATION, **kwargs)


def entries(folder):
    return sorted(os.listdir(folder))


@pytest.mark.slow
def test_versions_count_up_and_existing_ones_are_kept(model, tmp_path):
    first = fast_export(model, tmp_path)
    second = fast_export(model, tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert entries(tmp_path / "gru_classifier") == ["1", "2"]
    before = (first.path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists"):
        fast_export(model, tmp_path, version=1)
    assert (first.path / "saved_model.pb").stat().st_mtime_ns == before
    replaced = fast_export(model, tmp_path, version=1, force=True)
    assert replaced.path == first.path and entries(tmp_path / "gru_classifier") == ["1", "2"]
    assert fast_export(model, tmp_path, version=7, formats=("litert",)).path.name == "7"


@pytest.mark.slow
@pytest.mark.parametrize("failure", [KeyboardInterrupt, ExportError])
def test_interrupted_or_failed_export_leaves_nothing(model, tmp_path, monkeypatch, failure):
    def convert_then_fail(*args, **kwargs):
        raise failure("interrupted during LiteRT conversion")

    monkeypatch.setattr(litert, "convert", convert_then_fail)
    with pytest.raises(failure):
        fast_export(model, tmp_path)
    assert entries(tmp_path / "gru_classifier") == []


@pytest.mark.slow
def test_parity_failure_fails_the_export(model, tmp_path, monkeypatch):
    real_run = isolation.run_in_child
    for runtime in ("builtin", "xnnpack", "cpu"):
        def off_by_a_little(*args, runtime=runtime):
            outputs = real_run(*args)
            if runtime in outputs:
                outputs[runtime]["probabilities"] = outputs[runtime]["probabilities"] + 1e-3
            return outputs

        monkeypatch.setattr(isolation, "run_in_child", off_by_a_little)
        with pytest.raises(ExportError, match=r"exceeds 0.0001") as error:
            fast_export(model, tmp_path, formats=("litert", "onnx"))
        # The message names the artifact and the runtime that differed.
        assert f"({runtime})" in str(error.value)
        assert ("litert float32" if runtime != "cpu" else "onnx float32") in str(error.value)
        assert entries(tmp_path / "gru_classifier") == []


@pytest.mark.slow
def test_a_crashing_interpreter_fails_float32_and_drops_a_quantized_variant(model, tmp_path, monkeypatch):
    real_run = isolation.run_in_child

    def crash_on(filename):
        def run(path, *args):
            if path.name == filename:
                raise RuntimeCrash("the runtime crashed (signal SIGABRT)")
            return real_run(path, *args)
        return run

    monkeypatch.setattr(isolation, "run_in_child", crash_on("model.tflite"))
    with pytest.raises(ExportError, match="SIGABRT"):
        fast_export(model, tmp_path)
    assert entries(tmp_path / "gru_classifier") == []

    monkeypatch.setattr(isolation, "run_in_child", crash_on("model.float16.tflite"))
    result = fast_export(model, tmp_path, variants=("float16", "dynamic_int8"))
    assert "SIGABRT" in result.report["skipped"]["litert float16"]
    assert sorted(os.listdir(result.path / "litert")) == [
        "model.dynamic_int8.json", "model.dynamic_int8.tflite", "model.json", "model.tflite"]
    assert "SKIPPED" in result.format_table()


def test_a_crash_in_the_child_process_is_a_runtime_crash(model, tmp_path):
    # A real child-process death (not a monkeypatched one): a file that is no flatbuffer.
    result = fast_export(model, tmp_path, formats=("litert",))
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\0" * 64)
    (tmp_path / "broken.json").write_text((result.path / "litert" / "model.json").read_text())
    with pytest.raises(RuntimeCrash, match="runtime"):
        isolation.run_in_child(broken, {"token_ids": np.zeros((1, 12), np.int32)}, ("builtin",), tmp_path)


def test_full_window_calibration_rows_are_the_same_texts_run_together():
    token_ids = np.array([[5, 6, 0, 0], [7, 0, 0, 0], [8, 9, 10, 0], [11, 12, 13, 14]] * 5, np.int32)
    calibration = with_full_windows(token_ids, share=0.1)
    np.testing.assert_array_equal(calibration[:20], token_ids)
    np.testing.assert_array_equal(calibration[20:], [[5, 6, 7, 8], [9, 10, 11, 12]])
    # Never more windows than the texts have tokens for.
    np.testing.assert_array_equal(with_full_windows(token_ids[:2], share=1.0), token_ids[:2])


@pytest.mark.slow
@pytest.mark.parametrize("full_windows", [False, True])
def test_a_bilstm_int8_file_calibrated_on_short_texts_runs_on_xnnpack(tmp_path, monkeypatch, full_windows):
    # A tiny BiLSTM calibrated on short texts only. Each direction reads its text first and the padding
    # after (the backward pass reverses each text in place), so every step's int8 scales are calibrated
    # on text somewhere: XNNPACK (LiteRT's default CPU delegate) takes the file, with or without the
    # full-window calibration rows. (A backward pass that met the padding first left its first steps'
    # scales degenerate, and XNNPACK refused the file.)
    bilstm = helpers.build_tiny("bilstm_classifier", class_names=["negative", "positive"])
    bilstm.fit(helpers.TEXTS, helpers.LABELS, epochs=10, batch_size=8, verbose=0)
    if not full_windows:
        monkeypatch.setattr(text_classification, "with_full_windows", lambda token_ids: token_ids)
    result = fast_export(bilstm, tmp_path, variants=("int8",), formats=("litert",))
    assert result.report["skipped"] == {}
    assert (result.path / "litert" / "model.int8.tflite").exists()
    figures = result.report["parity"]["litert int8"]
    assert figures["xnnpack"]["label_agreement"] >= 0.9 and figures["label_agreement"] >= 0.9


@pytest.mark.slow
def test_transformer_int8_keeps_attention_and_layer_norm_in_float(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    transformer = helpers.build_tiny("transformer_classifier", class_names=["negative", "positive"])
    task = task_for(transformer)
    saved = task.runtime_graph(transformer, litert.target("int8"), {}).write_saved_model(tmp_path / "sm")
    calibration = [{"token_ids": row[np.newaxis]}
                   for row in with_full_windows(transformer.preprocessor.reference().encode(helpers.TEXTS))]

    def output_dtypes(flatbuffer):
        interpreter = Interpreter(model_content=flatbuffer)
        tensors = {tensor["index"]: tensor["dtype"].__name__ for tensor in interpreter.get_tensor_details()}
        dtypes = {}
        for op in interpreter._get_ops_details():
            dtypes.setdefault(op["op_name"], set()).update(tensors[index] for index in op["outputs"])
        return dtypes

    everything = output_dtypes(litert.convert(saved, "int8", calibration))
    assert everything["BATCH_MATMUL"] == everything["SOFTMAX"] == {"int8"}
    float_ops = recipe_for(transformer.backbone).int8_float_ops
    selective = output_dtypes(litert.convert(saved, "int8", calibration, float_ops=float_ops))
    assert selective["FULLY_CONNECTED"] == {"int8"}
    for op in ["BATCH_MATMUL", "SOFTMAX", "MEAN", "RSQRT"]:
        assert selective[op] == {"float32"}, (op, selective[op])


def test_non_builtin_ops_are_named_with_their_layer(tmp_path):
    class StringLength(keras.layers.Layer):
        def call(self, token_ids):
            return tf.cast(tf.strings.length(tf.strings.as_string(token_ids)), "float32")

    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Dense(2)(StringLength(name="digits")(inputs)))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda token_ids: {"probabilities": model(token_ids)},
        input_signature=[tf.TensorSpec([1, 4], tf.int32, name="token_ids")],
    )
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    with pytest.raises(ExportError) as error:
        litert.convert(tmp_path / "sm")
    message = str(error.value)
    assert "tf.AsString" in message and "tf.StringLength" in message and "digits" in message
    assert "\n" not in message


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures(model, tmp_path):
    result = fast_export(model, tmp_path, formats=("saved_model",))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", str(result.path), "--all"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    for expected in ["signature_def['serving_default']", "signature_def['predict_token_ids']",
                     "inputs['text']", "inputs['token_ids']", "outputs['probabilities']",
                     "outputs['class_id']", "outputs['label']"]:
        assert expected in shown.stdout, expected
    assert not (result.path / "litert").exists()


@pytest.mark.slow
def test_saved_model_reads_long_documents_whole_as_keras_does(model, tmp_path):
    from zoo.export.tasks import text_classification
    from zoo.models.documents import predict_documents

    result = fast_export(model, tmp_path, formats=("saved_model",))
    figures = result.report["parity"]["saved_model"]
    assert figures["documents_max_abs_diff"] <= 1e-5  # checked at export on documents up to past the last window
    documents = text_classification.document_texts(helpers.TEXTS)
    served = tf.saved_model.load(str(result.path)).signatures["serving_documents"]
    np.testing.assert_allclose(served(text=tf.constant(documents))["probabilities"].numpy(),
                               predict_documents(model, documents), atol=1e-5)
    # A text that fits the window is read as serving_default reads it.
    short = tf.constant(helpers.TEXTS[:4])
    np.testing.assert_allclose(served(text=short)["probabilities"].numpy(),
                               tf.saved_model.load(str(result.path)).signatures["serving_default"](text=short)[
                                   "probabilities"].numpy(), atol=1e-6)


def test_documents_that_disagree_with_keras_fail_the_export():
    from zoo.export.errors import ParityError
    from zoo.export.tasks.text_classification import ClassifierValidation, TextClassificationExport

    validation = ClassifierValidation(["a"], None, np.zeros((1, 4), np.int32), [],
                                      keras_document_probabilities=np.array([[0.25, 0.75]]))
    task = TextClassificationExport()
    assert task._compare_documents(validation, "x", [[0.25, 0.75]], exact=True) == 0.0
    with pytest.raises(ParityError, match="x: max .probability - Keras. = 0.01 on 1 documents exceeds"):
        task._compare_documents(validation, "x", [[0.26, 0.74]], exact=True)
    assert task._compare_documents(validation, "x", [[0.26, 0.74]], exact=False) == pytest.approx(0.01)


@pytest.mark.slow
def test_warmup_requests_are_real_predict_requests(model, tmp_path):
    result = fast_export(model, tmp_path, formats=("saved_model",))
    requests = saved_model.read_warmup_requests(result.path)
    assert [r.model_spec.signature_name for r in requests] == ["serving_default"] * 2
    assert requests[0].model_spec.name == "gru_classifier"
    texts = tf.make_ndarray(requests[1].inputs["text"]).tolist()
    assert [t.decode() for t in texts] == helpers.TEXTS[:8]
    # And they run against the exported signature.
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    assert served(text=tf.constant(texts))["probabilities"].shape == (8, 2)


def test_bad_arguments_fail_before_writing(model, tmp_path):
    with pytest.raises(ExportError, match="formats"):
        fast_export(model, tmp_path, formats=("coreml",))
    with pytest.raises(ExportError, match="needs one of the formats"):
        fast_export(model, tmp_path, formats=("saved_model",), variants=("int8",))
    with pytest.raises(ExportError, match="variants"):
        fast_export(model, tmp_path, variants=("int4",))
    with pytest.raises(ExportError, match="version"):
        fast_export(model, tmp_path, version=0)
    with pytest.raises(ExportError, match="vocabulary"):
        fast_export(helpers.zoo.create_model("gru_classifier", **helpers.tiny_config("gru_classifier")), tmp_path)
    assert not (tmp_path / "gru_classifier").exists() or entries(tmp_path / "gru_classifier") == []


@pytest.mark.slow
def test_a_format_writes_a_model_to_a_path_without_an_export(model, tmp_path):
    # Each format plug-in is callable on its own (benchmarks and users write single files this way).
    from zoo.export.formats import onnx
    from zoo.runtime import TextClassifierRunner

    expected = model.predict(helpers.UNSEEN, verbose=0)
    for format_module, path in ((litert, tmp_path / "phone" / "lstm.tflite"), (onnx, tmp_path / "server.onnx")):
        artifact = format_module.write(model, path)
        assert artifact["format"] == format_module.NAME and artifact["bytes"] == path.stat().st_size
        np.testing.assert_allclose(TextClassifierRunner(path).predict(helpers.UNSEEN), expected, atol=1e-5)
    batch32 = litert.write(model, tmp_path / "server.tflite", "batch32")
    assert batch32["signatures"]["serving_default"]["inputs"][0]["shape"] == [32, model.sequence_length]
    with pytest.raises(ExportError, match="no 'int4' variant"):
        litert.write(model, tmp_path / "x.tflite", "int4")


@pytest.mark.slow
def test_sidecar_tokenizer_matches_keras_ids(model, tmp_path):
    from zoo.runtime import TextClassifierRunner

    result = fast_export(model, tmp_path, formats=("litert",))
    runner = TextClassifierRunner(result.path / "litert" / "model.tflite")
    np.testing.assert_array_equal(
        runner.tokenizer.encode(helpers.UNSEEN), model.preprocessor(helpers.UNSEEN).numpy()
    )
    labels = runner.predict_labels(["a great film", "a dull film"])
    assert [label for label, _ in labels] == [label for label, _ in model.predict_labels(["a great film", "a dull film"])]
    with pytest.raises(TypeError):
        runner.predict("one string")


@pytest.mark.slow
def test_saved_model_stores_each_weight_once(model, tmp_path):
    # keras-team/keras#23553: Keras's ExportArchive writes every weight twice;
    # zoo.export.archive.ExportArchive tracks the tf.Variables so they dedupe.
    result = fast_export(model, tmp_path, formats=("saved_model",))
    stored = tf.train.list_variables(str(result.path / "variables" / "variables"))
    weights = [(name, shape) for name, shape in stored if not name.startswith(("_CHECKPOINTABLE", "_misc_assets"))]
    assert not any(name.startswith("_all_variables") for name, _ in weights)
    # Weights plus the dropout layers' seed states, nothing twice.
    assert model.count_params() <= sum(int(np.prod(shape)) for _, shape in weights) <= model.count_params() + 64


# === Publishing: versions, claims and leftovers (zoo.export.publish; no model needed) ===

def fake_claim(base, version, pid, host):
    """The claim of an export running in another PID namespace (another container or NFS client): its pid is
    meaningless here. Returns the claim's `pid` file, for the caller to lock as its live owner would."""
    claim = base / f".claim-{version}"
    claim.mkdir(parents=True)
    (claim / "host").write_text(f"{host} other-container")
    (claim / "pid").write_text(str(pid))
    return claim / "pid"


def publish_version(base, version=None, force=False):
    """Claim, stage and publish a version (an empty one) as `export` does; its number."""
    from zoo.export import publish

    with publish.claimed_version(base, version, force) as number, publish.staged_version(base, number, force):
        pass
    return number


def test_an_export_in_another_pid_namespace_is_alive_while_it_holds_its_claim(tmp_path):
    import fcntl

    base = tmp_path / "model"
    not_a_process_here = 999999
    other_host = "h" + "0" * 12
    owner_file = fake_claim(base, 1, not_a_process_here, other_host)
    staging = base / f".tmp-1-{not_a_process_here}-{other_host}-abcd"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"half written")
    with open(owner_file, "r+") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)  # as the live owner holds it
        assert publish_version(base) == 2
        assert staging.exists() and owner_file.exists()
        with pytest.raises(ExportError, match=r"model/1 is being exported right now by process 999999 on host "
                                              r"other-container"):
            publish_version(base, 1)
    # Its owner is gone (the kernel, or the NFS server, freed the lock): claim and staging are leftovers.
    assert publish_version(base, 1) == 1
    assert entries(base) == ["1", "2"]


def test_a_dead_process_of_this_host_leaves_nothing_that_outlives_the_next_export(tmp_path):
    from zoo.export import publish

    base = tmp_path / "model"
    base.mkdir()
    dead = 999999
    for name in (f".claiming-{dead}-{publish.HOST}-x", f".tmp-1-{dead}-{publish.HOST}-y", f".old-1-{dead}-{publish.HOST}"):
        (base / name).mkdir()
    assert publish_version(base) == 1
    assert entries(base) == ["1"]


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_force_over_a_file_or_symlink_replaces_it_and_leaves_no_old_copy(tmp_path, kind):
    base, target = tmp_path / "model", tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("not zoo's")
    base.mkdir()
    if kind == "file":
        (base / "1").write_text("a file")
    else:
        (base / "1").symlink_to(target if kind == "symlink" else tmp_path / "missing")
    with pytest.raises(ExportError, match="already exists"):
        publish_version(base, 1)
    assert publish_version(base, 1, force=True) == 1
    assert entries(base) == ["1"] and (base / "1").is_dir() and not (base / "1").is_symlink()
    assert (target / "keep.txt").read_text() == "not zoo's"  # a symlink's target is not touched


@pytest.mark.parametrize("name", ["٣", "²", "١٠", "３"])
def test_folders_named_with_non_ascii_digits_are_not_versions(tmp_path, name):
    from zoo.export import publish

    base = tmp_path / "model"
    (base / name).mkdir(parents=True)
    (base / "1").mkdir()
    assert publish.choose_version(base, None, False) == 2
    assert publish_version(base) == 2
    assert entries(base) == sorted(["1", "2", name])


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_claim_that_is_not_a_folder_is_taken_over_not_looped_on(tmp_path, kind):
    base, target = tmp_path / "model", tmp_path / "elsewhere"
    target.mkdir()
    base.mkdir()
    if kind == "file":
        (base / ".claim-1").write_text("not a claim")
    else:
        (base / ".claim-1").symlink_to(target)
    assert publish_version(base) == 1
    assert entries(base) == ["1"] and target.is_dir()
