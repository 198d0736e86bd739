"""Shared checks every registered model runs (like keras-hub's test_case)."""

import keras
import numpy as np

import zoo

POSITIVE = ["a great film", "great acting and a great story", "i loved it", "wonderful and moving", "loved the cast", "a wonderful story"]
NEGATIVE = ["a dull film", "dull acting and a boring story", "i hated it", "boring and tedious", "hated the cast", "a tedious story"]
TEXTS = (POSITIVE + NEGATIVE) * 2
LABELS = np.array(([1] * len(POSITIVE) + [0] * len(NEGATIVE)) * 2, dtype="int32")
# Never seen in training: out-of-vocabulary words, punctuation, unicode,
# the empty string and text longer than the sequence length.
UNSEEN = ["", "Great!!! ÉPIQUE café", "boring " * 40, "zzz qqq"]

# Small enough to train in seconds; every family accepts these names.
TINY_CONFIG = dict(
    vocabulary_size=64, sequence_length=12, embedding_dim=8, hidden_dim=8, learning_rate=1e-2, dropout=0.0,
    naive_bayes_buckets=32,
)


def tiny_config(name, **overrides):
    defaults = zoo.model_info(name).default_config
    config = {key: value for key, value in TINY_CONFIG.items() if key in defaults}
    if "num_heads" in defaults:
        config["num_heads"] = 2
    return dict(config, **overrides)


def build_tiny(name, **overrides):
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **tiny_config(name, **overrides))
    model.adapt(TEXTS)
    return model


def run_model_test(name):
    """Build from the registry, learn on tiny data, predict raw strings."""
    model = build_tiny(name, class_names=["negative", "positive"])
    loss_before = model.evaluate(TEXTS, LABELS, verbose=0, return_dict=True)["loss"]
    model.fit(TEXTS, LABELS, epochs=10, batch_size=8, verbose=0)
    loss_after = model.evaluate(TEXTS, LABELS, verbose=0, return_dict=True)["loss"]
    assert loss_after < 0.8 * loss_before, (loss_before, loss_after)

    probabilities = model.predict(UNSEEN, verbose=0)
    assert probabilities.shape == (len(UNSEEN), 2)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    labels = model.predict_labels(["a great film", "a dull film"])
    assert [label for label, _ in labels] == ["positive", "negative"]
    return model


def run_model_saving_test(model, tmp_path):
    """`.keras` round trip in safe mode: same outputs, vocabulary and names."""
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    assert type(restored.backbone) is type(model.backbone)
    assert restored.class_names == model.class_names
    assert restored.preprocessor.tokenizer.get_vocabulary() == model.preprocessor.tokenizer.get_vocabulary()
    for restored_weight, weight in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_array_equal(restored_weight.numpy(), weight.numpy(), err_msg=weight.path)
    # Equal weights, but not always bit-equal outputs: oneDNN's AVX-512
    # kernels may pick a different reduction order per call (2e-8 seen).
    np.testing.assert_allclose(
        restored.predict(UNSEEN + TEXTS, verbose=0), model.predict(UNSEEN + TEXTS, verbose=0), rtol=1e-6, atol=1e-7
    )
    # The optimizer state comes back too, so training can resume.
    assert restored.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()


def run_config_test(model):
    """get_config/from_config of backbone, preprocessor and task."""
    backbone = model.backbone
    clone = type(backbone).from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    clone.set_weights(backbone.get_weights())
    token_ids = model.preprocessor(TEXTS)
    np.testing.assert_allclose(clone.predict(token_ids, verbose=0), backbone.predict(token_ids, verbose=0), atol=1e-6)

    preprocessor = type(model.preprocessor).from_config(model.preprocessor.get_config())
    assert preprocessor.get_config() == model.preprocessor.get_config()

    task = type(model).from_config(model.get_config())
    assert task.get_config()["class_names"] == model.class_names
    assert task.count_params() == model.count_params()


def run_export_test(model, tmp_path):
    """zoo.export end to end: TF Serving SavedModel + every LiteRT variant match Keras."""
    import json

    import tensorflow as tf

    from zoo.export import QUANTIZATIONS, export, litert
    from zoo.lite import TextClassifierRunner

    result = export(model, root=tmp_path / "serving", validation_data=(TEXTS, LABELS))
    assert result.path == tmp_path / "serving" / model.name / "1"
    keras_probabilities = model.predict(UNSEEN + TEXTS, verbose=0)

    # The SavedModel takes raw strings and tokenizes with its own asset.
    assert (result.path / "assets" / "vocabulary.txt").read_text(encoding="utf-8").split("\n") == (
        model.preprocessor.tokenizer.get_vocabulary()
    )
    served = tf.saved_model.load(str(result.path)).signatures
    outputs = served["serving_default"](text=tf.constant(UNSEEN + TEXTS))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), keras_probabilities, atol=1e-5)
    expected_ids = keras_probabilities.argmax(axis=-1)
    np.testing.assert_array_equal(outputs["class_id"].numpy(), expected_ids)
    assert [label.decode() for label in outputs["label"].numpy()] == [model.class_names[i] for i in expected_ids]
    token_ids = model.preprocessor.reference().encode(UNSEEN + TEXTS)
    by_ids = served["predict_token_ids"](token_ids=tf.constant(token_ids))["probabilities"].numpy()
    np.testing.assert_allclose(by_ids, keras_probabilities, atol=1e-5)

    # Each LiteRT file: builtin ops only, no delegates, sidecar-driven
    # reference tokenization reproduces Keras on text it never saw.
    report = json.loads((result.path / "export_report.json").read_text())
    manifest = json.loads((result.path / "manifest.json").read_text())
    for quantization in (None,) + QUANTIZATIONS:
        filename = "model.tflite" if quantization is None else f"model.{quantization}.tflite"
        path = result.path / "litert" / filename
        if f"litert {quantization}" in report["skipped"]:
            # Left out because the interpreter crashed on it: reported, not shipped.
            assert quantization == "int8" and "crashed" in report["skipped"][f"litert {quantization}"]
            assert not path.exists()
            continue
        ops = litert.op_names(path.read_bytes())
        assert all(op.isupper() for op in ops), ops
        # LSTMs ship as TFLite's fused sequence op (float files), other
        # recurrent layers unrolled (no WHILE loop).
        assert "WHILE" not in ops, ops
        if quantization in (None, "float16") and "lstm" in model.name:
            assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops, ops
        # Both runtimes an app meets: the builtin kernels alone, and LiteRT's
        # default XNNPACK delegate (which refuses some int8 scales outright).
        figures = report["parity"][f"litert {quantization or 'float32'}"]
        assert figures["examples"] == figures["xnnpack"]["examples"] == len(TEXTS)
        assert figures["bytes"] == path.stat().st_size
        for delegates in (False, True):
            probabilities = TextClassifierRunner(path, delegates=delegates).predict(UNSEEN + TEXTS)
            assert probabilities.shape == keras_probabilities.shape and np.all(np.isfinite(probabilities))
            if quantization is None:
                np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)
            elif quantization in ("float16", "dynamic_int8"):
                np.testing.assert_allclose(probabilities, keras_probabilities, atol=0.05)
        if quantization is None:
            assert max(figures["max_abs_diff"], figures["xnnpack"]["max_abs_diff"]) <= 1e-4
            assert figures["label_agreement"] == figures["xnnpack"]["label_agreement"] == 1.0
    assert manifest["labels"] == model.class_names and manifest["name"] == model.name
    assert set(manifest["artifacts"]) | set(report["skipped"]) == (
        {"saved_model"} | {f"litert {q}" for q in ("float32",) + QUANTIZATIONS}
    )
    assert all(manifest["files"][path] for path in ["saved_model.pb", "litert/model.tflite", "litert/model.json"])
    return result
