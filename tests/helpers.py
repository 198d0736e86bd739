"""Shared checks every registered model runs, whatever its task (like keras-hub's test_case).

`build_tiny(name)` builds a model from its registry spec's `test_config`;
`run_model_test`, `run_model_saving_test`, `run_config_test` and
`run_export_test` work on every task through a small per-task case
(`ClassifierCase`, `CausalLMCase`): the data it learns from, what a
prediction looks like, and how an exported file is run.
"""

import functools
import itertools
import json
import tempfile

import keras
import numpy as np
import tensorflow as tf

import zoo

POSITIVE = ["a great film", "great acting and a great story", "i loved it", "wonderful and moving", "loved the cast", "a wonderful story"]
NEGATIVE = ["a dull film", "dull acting and a boring story", "i hated it", "boring and tedious", "hated the cast", "a tedious story"]
TEXTS = (POSITIVE + NEGATIVE) * 2
LABELS = np.array(([1] * len(POSITIVE) + [0] * len(NEGATIVE)) * 2, dtype="int32")
# Never seen in training: out-of-vocabulary words, punctuation, unicode,
# the empty string and text longer than the sequence length.
UNSEEN = ["", "Great!!! ÉPIQUE café", "boring " * 40, "zzz qqq"]

# Repetitive enough that a few tiny epochs measurably lower the loss.
CORPUS = "\n".join(
    f"{who}: the {thing} is {how}, and so is the {other}." for who in ("ROMEO", "JULIET", "NURSE", "FRIAR")
    for thing in ("night", "moon", "rose", "sword", "letter") for how in ("sweet", "pale", "sharp")
    for other in ("day", "sun")
)
PROMPTS = ["ROMEO: the", "JULIET:", "the rose is"]

# Three topics, each text naming any subset of them (the empty one too) with
# a word of each among filler words, in six seeded wordings per subset.
TAGS = ["politics", "sports", "weather"]
TOPIC_WORDS = {"politics": ["vote", "senate", "election"], "sports": ["goal", "match", "team"],
               "weather": ["rain", "storm", "sunny"]}
FILLER_WORDS = ["the", "news", "today", "a", "long", "day", "we", "heard", "that"]


def tagged_texts(wordings=6, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for size in range(len(TAGS) + 1):
        for subset in itertools.combinations(TAGS, size):
            for _ in range(wordings):
                words = [*rng.choice(FILLER_WORDS, 3, replace=False), *(rng.choice(TOPIC_WORDS[tag]) for tag in subset)]
                texts.append(" ".join(rng.permutation(words)))
                labels.append([int(tag in subset) for tag in TAGS])
    return texts, np.array(labels, dtype="int32")


TAGGED_TEXTS, TAGGED_LABELS = tagged_texts()
# A text of each kind (one tag, two tags, none), with the tags a trained model gives it.
TAGGED_EXAMPLES = {TAGGED_TEXTS[TAGGED_LABELS.tolist().index([int(tag in tags) for tag in TAGS])]: tags
                   for tags in (["politics"], ["politics", "weather"], [])}


def tiny_config(name, **overrides):
    """The spec's `test_config` (plus, for language models, a tiny trained BPE), then `overrides`."""
    spec = zoo.model_info(name)
    config = dict(spec.test_config)
    if spec.task == "causal-lm":
        config["tokenizer"] = str(tiny_bpe_directory())
    return dict(config, **overrides)


@functools.lru_cache(maxsize=None)
def tiny_bpe_directory():
    """A 320-token byte-level BPE learned on `CORPUS` (vocab.json + merges.txt), made once per session."""
    from zoo.preprocessing import bpe

    vocabulary, merges = bpe.train_byte_level_bpe([CORPUS], vocabulary_size=320)
    directory = tempfile.mkdtemp(prefix="zoo-test-bpe-")
    return bpe.write_vocabulary_files(directory, vocabulary, merges)[0].parent


def build_tiny(name, **overrides):
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **tiny_config(name, **overrides))
    case_for(name).prepare(model)
    return model


def case_for(name):
    return {"text-classification": ClassifierCase, "causal-lm": CausalLMCase,
            "multi-label-classification": MultiLabelCase}[zoo.model_info(name).task]


class ClassifierCase:
    """Single-label classifiers: the two classes of `TEXTS`."""

    # What `fit` takes: raw texts and their labels; how many tiny epochs learn them.
    TRAIN_DATA = (TEXTS, LABELS)
    EPOCHS = 10

    @classmethod
    def prepare(cls, model):
        model.adapt(cls.TRAIN_DATA[0])

    @classmethod
    def loss(cls, model):
        return model.evaluate(*cls.TRAIN_DATA, verbose=0, return_dict=True)["loss"]

    @classmethod
    def fit(cls, model):
        model.fit(*cls.TRAIN_DATA, epochs=cls.EPOCHS, batch_size=8, verbose=0)

    @staticmethod
    def check_predictions(model):
        probabilities = model.predict(UNSEEN, verbose=0)
        assert probabilities.shape == (len(UNSEEN), 2)
        assert np.all(np.isfinite(probabilities))
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
        labels = model.predict_labels(["a great film", "a dull film"])
        assert [label for label, _ in labels] == ["positive", "negative"]

    @classmethod
    def outputs(cls, model):
        return model.predict(UNSEEN + cls.TRAIN_DATA[0], verbose=0)

    @classmethod
    def backbone_inputs(cls, model):
        return model.preprocessor(cls.TRAIN_DATA[0])

    @staticmethod
    def check_restored(restored, model):
        assert restored.class_names == model.class_names
        assert restored.preprocessor.tokenizer.get_vocabulary() == model.preprocessor.tokenizer.get_vocabulary()

    @staticmethod
    def check_served_decisions(model, outputs, keras_probabilities):
        """A served classifier answers the best class's id and name."""
        expected_ids = keras_probabilities.argmax(axis=-1)
        np.testing.assert_array_equal(outputs["class_id"].numpy(), expected_ids)
        assert [label.decode() for label in outputs["label"].numpy()] == [model.class_names[i] for i in expected_ids]


class MultiLabelCase(ClassifierCase):
    """Multi-label classifiers: the registered test_config has three labels, `TAGS` (named, or "0", "1", "2")."""

    TRAIN_DATA = (TAGGED_TEXTS, TAGGED_LABELS)
    EPOCHS = 30

    @staticmethod
    def check_predictions(model):
        scores = model.predict(UNSEEN, verbose=0)
        assert scores.shape == (len(UNSEEN), len(TAGS)) and np.all((scores >= 0) & (scores <= 1))
        predicted = model.predict_labels(list(TAGGED_EXAMPLES))
        names = dict(zip(TAGS, model.class_names))
        assert [sorted(label for label, _ in row) for row in predicted] == \
            [sorted(names[tag] for tag in tags) for tags in TAGGED_EXAMPLES.values()]
        assert all(row == sorted(row, key=lambda pair: -pair[1]) for row in predicted)

    @staticmethod
    def check_restored(restored, model):
        ClassifierCase.check_restored(restored, model)
        assert restored.thresholds == model.thresholds

    @staticmethod
    def check_served_decisions(model, outputs, keras_probabilities):
        """A served tagger answers each label's decision at its threshold."""
        np.testing.assert_array_equal(outputs["predicted"].numpy(), keras_probabilities >= np.array(model.thresholds))


class CausalLMCase:
    LINES = CORPUS.split("\n")
    TRAIN_DATA = (LINES,)

    @staticmethod
    def prepare(model):
        model.compile(optimizer=keras.optimizers.Adam(3e-3), sampler="greedy")

    @classmethod
    def loss(cls, model):
        return model.evaluate(tf.constant(cls.LINES), batch_size=16, verbose=0, return_dict=True)["loss"]

    @classmethod
    def fit(cls, model):
        model.fit(tf.constant(cls.LINES), epochs=3, batch_size=8, verbose=0)

    @staticmethod
    def check_predictions(model):
        completions = model.generate(PROMPTS, max_length=16)
        assert len(completions) == len(PROMPTS)
        assert all(text.startswith(prompt) for text, prompt in zip(completions, PROMPTS))

    @classmethod
    def outputs(cls, model):
        return np.asarray(model.predict(tf.constant(cls.LINES[:4]), verbose=0))

    @staticmethod
    def backbone_inputs(model):
        token_ids = np.array([[5, 17, 42, 7, 99, 3]], "int32")
        return {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids, bool)}

    @staticmethod
    def check_restored(restored, model):
        tokenizer, restored_tokenizer = model.preprocessor.tokenizer, restored.preprocessor.tokenizer
        assert restored_tokenizer.vocabulary == tokenizer.vocabulary and restored_tokenizer.merges == tokenizer.merges


def run_model_test(name):
    """Build from the registry, learn on tiny data, predict from raw strings."""
    case = case_for(name)
    model = build_tiny(name, **({"class_names": ["negative", "positive"]} if case is ClassifierCase else {}))
    # The class the registry says the builder returns (training reads the task's rules from it).
    assert type(model) is zoo.model_info(name).model_class
    loss_before = case.loss(model)
    case.fit(model)
    loss_after = case.loss(model)
    assert loss_after < 0.8 * loss_before, (loss_before, loss_after)
    case.check_predictions(model)
    return model


def run_model_saving_test(model, tmp_path):
    """`.keras` round trip in safe mode: same weights, outputs, tokenizer and optimizer state."""
    case = case_for(model.name)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    assert type(restored.backbone) is type(model.backbone)
    case.check_restored(restored, model)
    for restored_weight, weight in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_array_equal(restored_weight.numpy(), weight.numpy(), err_msg=weight.path)
    # Equal weights, but not always bit-equal outputs: oneDNN's AVX-512
    # kernels may pick a different reduction order per call (2e-8 seen).
    np.testing.assert_allclose(case.outputs(restored), case.outputs(model), rtol=1e-6, atol=1e-6)
    # The optimizer state comes back too, so training can resume.
    assert restored.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()


def run_config_test(model):
    """get_config/from_config of backbone, preprocessor and task."""
    case = case_for(model.name)
    backbone = model.backbone
    clone = type(backbone).from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    clone.set_weights(backbone.get_weights())
    inputs = case.backbone_inputs(model)
    np.testing.assert_allclose(clone.predict(inputs, verbose=0), backbone.predict(inputs, verbose=0), atol=1e-6)

    preprocessor = type(model.preprocessor).from_config(model.preprocessor.get_config())
    assert preprocessor.get_config() == model.preprocessor.get_config()

    task = type(model).from_config(model.get_config())
    if hasattr(model, "class_names"):
        assert task.get_config()["class_names"] == model.class_names
    assert task.count_params() == model.count_params()


def run_export_test(model, tmp_path):
    """zoo.export end to end with every format the model's task supports; each file run as users run it."""
    if case_for(model.name) is CausalLMCase:
        return _run_causal_lm_export_test(model, tmp_path)
    return _run_classifier_export_test(model, tmp_path)


def _run_classifier_export_test(model, tmp_path):
    """Single- and multi-label classifiers: the case says what a server's decisions are."""
    import zoo.runtime
    from zoo.export import FORMATS, export
    from zoo.export.formats import artifact_key, litert, relative_path

    case = case_for(model.name)
    texts, labels = case.TRAIN_DATA
    result = export(model, root=tmp_path / "serving", validation_data=(texts, labels))
    assert result.path == tmp_path / "serving" / model.name / "1"
    keras_probabilities = model.predict(UNSEEN + texts, verbose=0)

    # The SavedModel takes raw strings and tokenizes with its own asset.
    assert (result.path / "assets" / "vocabulary.txt").read_text(encoding="utf-8").split("\n") == (
        model.preprocessor.tokenizer.get_vocabulary()
    )
    served = tf.saved_model.load(str(result.path)).signatures
    outputs = served["serving_default"](text=tf.constant(UNSEEN + texts))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), keras_probabilities, atol=1e-5)
    case.check_served_decisions(model, outputs, keras_probabilities)
    token_ids = model.preprocessor.reference().encode(UNSEEN + texts)
    by_ids = served["predict_token_ids"](token_ids=tf.constant(token_ids))["probabilities"].numpy()
    np.testing.assert_allclose(by_ids, keras_probabilities, atol=1e-5)

    # Each LiteRT and ONNX file: sidecar-driven reference tokenization
    # reproduces Keras on text it never saw, on every runtime an app meets.
    report = json.loads((result.path / "export_report.json").read_text())
    manifest = json.loads((result.path / "manifest.json").read_text())
    expected_keys = {"saved_model"}
    for format_module in (FORMATS["litert"], FORMATS["onnx"]):
        for variant in ("float32", *format_module.VARIANTS):
            key = artifact_key(format_module, variant)
            expected_keys.add(key)
            path = result.path / relative_path(format_module, variant)
            if key in report["skipped"]:
                # Left out because a runtime crashed on it: reported, not shipped.
                assert variant == "int8" and "crashed" in report["skipped"][key]
                assert not path.exists()
                continue
            figures = report["parity"][key]
            assert figures["bytes"] == path.stat().st_size
            if format_module is FORMATS["litert"]:
                ops = litert.op_names(path.read_bytes())
                assert all(op.isupper() for op in ops), ops
                # Recurrent layers ship unrolled over the window (no WHILE loop, no fused sequence op).
                assert "WHILE" not in ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops, ops
                # Both runtimes an app meets: the builtin kernels alone, and LiteRT's
                # default XNNPACK delegate (which refuses some int8 scales outright).
                assert figures["examples"] == figures["xnnpack"]["examples"] == len(texts)
                if litert.target(variant).batch_size != 1:
                    # The server file: a static batch of 32; MediaPipe takes one text, so it is not run there.
                    assert "mediapipe" not in figures
                    assert zoo.runtime.load(path).model.batch_size("serving_default", "token_ids") == 32
                else:
                    # And MediaPipe Tasks' TextClassifier, from the file's own metadata (tests/export/test_app_runtimes.py).
                    assert figures["mediapipe"]["examples"] == len(texts)
                    assert figures["mediapipe"]["label_agreement_vs_runner"] == 1.0
                runners = [zoo.runtime.load(path, delegates=delegates) for delegates in (False, True)]
                runtime_figures = [figures, figures["xnnpack"]]
            else:
                assert figures["runtime"] == "cpu" and figures["examples"] == len(texts)
                runners, runtime_figures = [zoo.runtime.load(path)], [figures]
            for runner in runners:
                probabilities = runner.predict(UNSEEN + texts)
                assert probabilities.shape == keras_probabilities.shape and np.all(np.isfinite(probabilities))
                if variant in ("float32", "batch32"):
                    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)
                    assert _label_names(runner.predict_labels(texts)) == _label_names(model.predict_labels(texts))
                elif variant in ("float16", "dynamic_int8"):
                    np.testing.assert_allclose(probabilities, keras_probabilities, atol=0.05)
            if variant in ("float32", "batch32"):
                assert max(row["max_abs_diff"] for row in runtime_figures) <= 1e-4
                assert all(row["label_agreement"] == 1.0 for row in runtime_figures)
    # ONNX takes any batch size: one call for the whole batch.
    onnx_runner = zoo.runtime.load(result.path / "onnx" / "model.onnx")
    assert onnx_runner.model.batch_size("serving_default", "token_ids") is None
    assert manifest["labels"] == model.class_names and manifest["name"] == model.name
    assert set(manifest["artifacts"]) | set(report["skipped"]) == expected_keys
    assert all(manifest["files"][path] for path in ["saved_model.pb", "litert/model.tflite", "litert/model.json",
                                                    "onnx/model.onnx", "onnx/model.json"])
    return result


def _label_names(predictions):
    """`predict_labels` output without the scores: a name per text, or a list of names per text."""
    return [[name for name, _ in row] if isinstance(row, list) else row[0] for row in predictions]


def _run_causal_lm_export_test(model, tmp_path):
    from zoo.export import export
    from zoo.export.tasks.causal_lm import keras_greedy_token_ids
    from zoo.runtime import Generator

    result = export(model, root=tmp_path / "serving", validation_data=PROMPTS, cache_length=32,
                    validation_length=24)
    parity = result.report["parity"]
    assert parity["saved_model"]["identical_sequences"] == parity["litert float32"]["identical_sequences"] == 1.0
    # LiteRT-LM's engine owns a KV cache: it runs the transformers' bundles, not a recurrent state.
    bundles = {"litert_lm float32", "litert_lm dynamic_int8"} if result.task.name == "causal-lm" and hasattr(
        model.backbone, "num_heads") else set()
    assert set(result.report["parity"]) | set(result.report["skipped"]) == {
        "keras", "saved_model", "litert float32", "litert dynamic_int8", *bundles}
    if bundles:  # Google's LiteRT-LM engine on the bundle: Keras's greedy tokens (tests/export/test_app_runtimes.py).
        assert parity["litert_lm float32"]["identical_sequences"] == 1.0
    loaded = tf.saved_model.load(str(result.path))
    texts = loaded.signatures["generate"](prompts=tf.constant(PROMPTS[:1]), max_length=tf.constant(20))["texts"]
    assert texts.numpy()[0].decode("utf-8", "replace").startswith(PROMPTS[0])
    generator = Generator(result.path / "litert" / "model.tflite", delegates=False)
    expected = keras_greedy_token_ids(model, ["NURSE: the moon"], 20)[0]
    assert generator.generate_token_ids(generator.prompt_token_ids("NURSE: the moon"), max_length=20) == expected
    return result
