"""Multi-label text classification: the model, its Naive Bayes branch, thresholds, metrics, training, CLI."""

import json
import re

import keras
import keras_hub
import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

import zoo
from tests import helpers
from tests.test_cli import error_line, run_zoo
from zoo.evaluation import MultiLabelReport, best_f1_thresholds
from zoo.layers.naive_bayes import OneVsRestNaiveBayesLogits
from zoo.models.multi_label_text_classifier import TASK, MultiLabelTextClassifier
from zoo.training import task_class, train_classifier

MODELS = zoo.list_models(task=TASK)

TAGS, TEXTS, LABELS, EXAMPLES = helpers.TAGS, helpers.TAGGED_TEXTS, helpers.TAGGED_LABELS, helpers.TAGGED_EXAMPLES


def micro_f1(model, texts=TEXTS, labels=LABELS):
    return MultiLabelReport.from_scores(labels, model.predict(texts, verbose=0), TAGS, model.thresholds).micro_f1


def test_variants_are_registered_for_every_backbone_family():
    assert MODELS == ["cnn_multi_label_classifier", "lstm_multi_label_classifier", "transformer_multi_label_classifier"]
    for name in MODELS:
        spec = zoo.model_info(name)
        assert spec.test_config and set(spec.test_config) <= set(spec.default_config)
        assert task_class(name) is MultiLabelTextClassifier
    assert task_class("lstm_classifier") is zoo.TextClassifier


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_model_learns_tags_and_round_trips(name, tmp_path):
    model = helpers.build_tiny(name, class_names=TAGS)
    assert isinstance(model, keras_hub.models.TextClassifier) and not isinstance(model, zoo.TextClassifier)
    assert model.get_layer("probabilities").activation is keras.activations.sigmoid
    loss_before, f1_before = helpers.MultiLabelCase.loss(model), micro_f1(model)
    helpers.MultiLabelCase.fit(model)
    loss_after, f1_after = helpers.MultiLabelCase.loss(model), micro_f1(model)
    assert loss_after < 0.4 * loss_before, (loss_before, loss_after)
    # Each tag is on half the texts: tagging everything scores 2/3, the best a model knowing nothing can
    # expect; trained, (nearly) every (text, tag) decision is right.
    assert f1_before < 0.7 and f1_after >= 0.95, (f1_before, f1_after)
    helpers.MultiLabelCase.check_predictions(model)
    model.choose_thresholds(TEXTS, LABELS)
    assert model.get_config()["thresholds"] == model.thresholds != [0.5] * len(TAGS)
    helpers.run_model_saving_test(model, tmp_path)
    helpers.run_config_test(model)


def test_empty_and_string_inputs():
    model = helpers.build_tiny("lstm_multi_label_classifier", class_names=TAGS)
    assert model.predict([]).shape == (0, len(TAGS))
    assert model.predict_labels([]) == []
    with pytest.raises(TypeError, match="list of strings"):
        model.predict_labels("one text")
    with pytest.raises(ValueError, match=r"thresholds must be 3 numbers in \[0, 1\]"):
        MultiLabelTextClassifier.from_config(dict(model.get_config(), thresholds=[0.5, 2.0, 0.5]))


def test_adapt_starts_each_label_at_its_prior():
    model = helpers.build_tiny("lstm_multi_label_classifier", class_names=TAGS, naive_bayes_buckets=0)
    rare = LABELS * (np.arange(len(LABELS)) % 4 == 0)[:, None]  # each tag on about one text in eight
    model.adapt(TEXTS, rare)
    rates = (rare.sum(axis=0) + 1) / (len(rare) + 2)
    np.testing.assert_allclose(keras.ops.sigmoid(model.output_dense.bias).numpy(), rates, rtol=1e-5)


# === Naive Bayes, one vs rest ===

TOKEN_IDS = np.array([[2, 3, 2, 3, 4, 0], [5, 5, 5, 0, 0, 0], [1, 4, 3, 0, 0, 0], [6, 2, 0, 0, 0, 0]], dtype="int32")
TOKEN_LABELS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])


def reference_log_count_ratios(token_ids, labels, vocabulary_size, buckets, alpha=100.0):
    """Each label's log presence-rate ratio (texts with it against texts without; m-estimates toward the
    feature's overall rate) and its log prior odds, in plain NumPy."""
    from tests.models.test_naive_bayes import reference_features

    num_features = vocabulary_size + buckets
    present = np.zeros((len(token_ids), num_features))
    for row, ids in enumerate(token_ids):
        present[row, sorted(reference_features(ids, vocabulary_size, buckets))] = 1
    overall_rate = present.mean(axis=0)
    ratios, priors = [], []
    for positive in labels.T.astype(bool):
        rate_with = (present[positive].sum(axis=0) + alpha * overall_rate) / (positive.sum() + alpha)
        rate_without = (present[~positive].sum(axis=0) + alpha * overall_rate) / ((~positive).sum() + alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(rate_with) - np.log(rate_without)
        r[present.sum(axis=0) == 0] = 0.0
        ratios.append(r)
        priors.append(np.log((positive.sum() + 1) / ((~positive).sum() + 1)))
    return np.stack(ratios, axis=1), np.array(priors)


def test_one_vs_rest_naive_bayes_is_each_labels_log_count_ratio():
    layer = OneVsRestNaiveBayesLogits(10, 3, bigram_buckets=7)
    layer.fit(TOKEN_IDS, TOKEN_LABELS)
    ratios, priors = reference_log_count_ratios(TOKEN_IDS, TOKEN_LABELS, 10, 7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.table), ratios, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias), priors, rtol=1e-5)
    scale = float(layer.scale.numpy())
    assert np.isclose(scale, np.geomspace(0.01, 2.0, 64), rtol=1e-6).any()  # calibrated on the candidate grid
    # Inference: scale * (features present . r) + prior; padding and never-seen ids add nothing.
    expected = scale * np.array([ratios[[2, 3, 10 + (2 * 10 + 3) % 7]].sum(axis=0), np.zeros(3)]) + priors
    scores = layer(np.array([[2, 3, 0, 0, 0, 0], [9, 0, 8, 0, 0, 0]], "int32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scores), expected, rtol=1e-5, atol=1e-5)


def test_one_vs_rest_leave_one_out_matches_a_refit_without_the_example():
    token_ids = np.concatenate([TOKEN_IDS, TOKEN_IDS[:, ::-1]])
    labels = np.concatenate([TOKEN_LABELS, TOKEN_LABELS[::-1]])
    layer = OneVsRestNaiveBayesLogits(10, 3, bigram_buckets=7)
    layer.fit(token_ids, labels)
    with layer.leave_out(labels):
        held_out = keras.ops.convert_to_numpy(layer(token_ids, training=True))
    for index in range(len(token_ids)):
        keep = np.arange(len(token_ids)) != index
        refit = OneVsRestNaiveBayesLogits(10, 3, bigram_buckets=7)
        refit.fit(token_ids[keep], labels[keep])
        refit.scale.assign(layer.scale)
        np.testing.assert_allclose(
            held_out[index], keras.ops.convert_to_numpy(refit(token_ids[index : index + 1]))[0], rtol=1e-5, atol=1e-5
        )
    assert not np.allclose(keras.ops.convert_to_numpy(layer(token_ids)), held_out)


def test_one_vs_rest_layer_config_round_trip():
    layer = OneVsRestNaiveBayesLogits(10, 3, bigram_buckets=7, alpha=20.0)
    assert OneVsRestNaiveBayesLogits.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match=r"multi-hot of shape \(4, 3\)"):
        layer.fit(TOKEN_IDS, np.array([0, 1, 2, 1]))


def test_naive_bayes_branch_alone_tags_the_texts_it_was_fitted_on():
    model = helpers.build_tiny("cnn_multi_label_classifier", class_names=TAGS)
    untrained = micro_f1(model)
    model.adapt(TEXTS, LABELS)
    # Before any training: the deep half is random, the Naive Bayes half already knows the topic words.
    assert untrained < 0.7 and micro_f1(model) >= 0.8, (untrained, micro_f1(model))


# === Thresholds and metrics ===


def scores_with_ties(rng, shape):
    # Rounded to two decimals: many equal scores, as a saturated sigmoid gives.
    return np.round(rng.uniform(size=shape), 2)


def brute_force_thresholds(labels, scores):
    """Try every threshold that changes a decision (each distinct score); keep the best F1, the highest on ties."""
    thresholds = []
    for positive, score in zip(labels.T, scores.T):
        if not positive.any():
            thresholds.append(0.5)
            continue
        candidates = sorted(set(score.tolist()), reverse=True)
        f1s = [f1_score(positive, score >= candidate) for candidate in candidates]
        best = f1s.index(max(f1s))
        below = candidates[best + 1] if best + 1 < len(candidates) else candidates[best]
        thresholds.append((candidates[best] + below) / 2)
    return thresholds


@pytest.mark.slow
def test_chosen_thresholds_match_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(20):
        labels = rng.uniform(size=(40, 5)) < [0.05, 0.2, 0.5, 0.9, 0.0]
        scores = np.clip(scores_with_ties(rng, (40, 5)) + 0.3 * labels, 0, 1)
        chosen = best_f1_thresholds(labels, scores)
        np.testing.assert_allclose(chosen, brute_force_thresholds(labels, scores), err_msg=f"trial {trial}")
        for label in range(5):
            if not labels[:, label].any():
                assert chosen[label] == 0.5  # no held-out positive: the default stays
                continue
            best = f1_score(labels[:, label], scores[:, label] >= chosen[label])
            # No threshold at all does better (a grid finer than the scores' 0.01 steps).
            assert best >= max(f1_score(labels[:, label], scores[:, label] >= t) for t in np.linspace(0, 1.01, 203))


def test_thresholds_example_and_ties():
    # Keeping all three texts (F1 0.8) beats the top one (2/3): at the lowest score, which keeps them all.
    assert best_f1_thresholds([[1], [0], [1]], [[0.9], [0.6], [0.3]]) == [0.3]
    # The top text alone (F1 1): midway between the 0.9 kept and the 0.6 dropped.
    assert best_f1_thresholds([[1], [0], [0]], [[0.9], [0.6], [0.3]]) == [0.75]
    # The top one or all four both give F1 2/3: the higher threshold wins.
    assert best_f1_thresholds([[1], [0], [0], [1]], [[0.9], [0.8], [0.7], [0.6]]) == [pytest.approx(0.85)]
    # Any real scores (a linear model's decision values) and their own default.
    assert best_f1_thresholds([[1, 0], [1, 0]], [[-2.0, 1.0], [-1.0, -1.0]], default=0.0) == [-2.0, 0.0]
    # Equal scores are decided together: cutting between the two 0.8s is not a choice.
    assert best_f1_thresholds([[1], [1], [0]], [[0.8], [0.8], [0.2]]) == [0.5]


def test_micro_and_macro_f1_equal_scikit_learns():
    rng = np.random.default_rng(1)
    labels = rng.uniform(size=(60, 6)) < [0.1, 0.3, 0.5, 0.7, 0.0, 0.2]
    scores = rng.uniform(size=(60, 6))
    scores[:, 4] = 0.1  # a label never present and never predicted: F1 0 in the macro mean, as scikit-learn's
    thresholds = rng.uniform(0.2, 0.8, size=6)
    thresholds[4] = 0.5
    report = MultiLabelReport.from_scores(labels, scores, list("abcdef"), thresholds)
    predicted = scores >= thresholds
    assert report.micro_f1 == pytest.approx(f1_score(labels, predicted, average="micro"), abs=1e-12)
    assert report.macro_f1 == pytest.approx(f1_score(labels, predicted, average="macro", zero_division=0), abs=1e-12)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, zero_division=0)
    rows = list(report.per_class().values())
    np.testing.assert_allclose([row["precision"] for row in rows], precision)
    np.testing.assert_allclose([row["recall"] for row in rows], recall)
    np.testing.assert_allclose([row["f1"] for row in rows], f1)
    assert [row["support"] for row in rows] == support.tolist()
    at_half = scores >= 0.5
    assert report.at_default.micro_f1 == pytest.approx(f1_score(labels, at_half, average="micro"), abs=1e-12)
    figures = report.to_dict()
    assert figures["at_0.5"]["macro_f1"] == pytest.approx(f1_score(labels, at_half, average="macro", zero_division=0))
    assert figures["thresholds"] == pytest.approx(thresholds.tolist())


# === Training, evaluation and the command line ===


def write_jsonl(path, texts, labels, names=TAGS):
    rows = [{"text": text, "tags": [name for name, flag in zip(names, row) if flag]} for text, row in zip(texts, labels)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def tiny_config_without_labels(name):
    """The registered test_config less what training takes from the data."""
    return {key: value for key, value in zoo.model_info(name).test_config.items() if key != "num_classes"}


@pytest.mark.slow
def test_train_classifier_chooses_thresholds_on_validation_and_reports_f1(tmp_path):
    data = write_jsonl(tmp_path / "tags.jsonl", TEXTS * 2, np.concatenate([LABELS, LABELS]))
    result = train_classifier("lstm_multi_label_classifier", data, out_dir=tmp_path / "model", label_column="tags",
                              epochs=6, batch_size=8, patience=2, verbose=0, validation_fraction=0.25,
                              **tiny_config_without_labels("lstm_multi_label_classifier"))
    report = json.loads((tmp_path / "model" / "train_report.json").read_text())
    assert report["data"]["class_names"] == TAGS and report["data"]["multi_label"] is True
    assert report["monitor"] == "val_loss"
    val_loss = report["history"]["val_loss"]
    assert report["best_epoch"] == int(np.argmin(val_loss)) + 1
    validation = report["validation"]
    # The saved model decides with the thresholds chosen on the validation split, which the report states.
    saved = zoo.load_model(tmp_path / "model")
    assert saved.thresholds == validation["thresholds"] == result.model.thresholds
    dataset = zoo.load_texts(data, label_column="tags", multi_label=True)
    _, held_out = dataset.split(0.25, 1337)
    scores = saved.predict(list(held_out.texts), verbose=0)
    assert saved.thresholds == pytest.approx(best_f1_thresholds(held_out.labels, scores), abs=1e-6)
    predicted = scores >= np.array(saved.thresholds)
    assert validation["micro_f1"] == pytest.approx(f1_score(held_out.labels, predicted, average="micro"))
    assert validation["macro_f1"] == pytest.approx(f1_score(held_out.labels, predicted, average="macro",
                                                             zero_division=0))
    assert validation["at_0.5"]["micro_f1"] == pytest.approx(f1_score(held_out.labels, scores >= 0.5, average="micro"))
    assert set(validation["per_class"]) == set(TAGS)
    assert sum(row["support"] for row in validation["per_class"].values()) == int(held_out.labels.sum())


@pytest.fixture(scope="module")
def tiny_tags_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tags.csv"
    rows = [(text, "|".join(tag for tag, flag in zip(TAGS, row) if flag)) for text, row in zip(TEXTS * 3, [*LABELS] * 3)]
    path.write_text("text,labels\n" + "".join(f"{text},{tags}\n" for text, tags in rows))
    return path


@pytest.mark.slow
def test_cli_train_evaluate_predict(tiny_tags_csv, tmp_path):
    out = tmp_path / "tagger"
    train = run_zoo("train", "cnn_multi_label_classifier", "--data", tiny_tags_csv, "--label-column", "labels",
                    "--epochs", 8, "--batch-size", 8, "--out", out, "--set", "vocabulary_size=64",
                    "--set", "embedding_dim=8", "--set", "hidden_dim=8", "--set", "learning_rate=0.01",
                    "--set", "naive_bayes_buckets=64")
    assert train.returncode == 0, train.stderr
    assert "micro_f1" in train.stdout and "(by val_loss)" in train.stdout
    assert "validation micro-F1: " in train.stdout and "at 0.5 for every label" in train.stdout
    report = json.loads((out / "train_report.json").read_text())
    assert report["validation"]["micro_f1"] >= 0.9

    evaluate = run_zoo("evaluate", out, "--data", tiny_tags_csv, "--label-column", "labels", "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    figures = json.loads(evaluate.stdout)
    assert figures["examples"] == len(TEXTS) * 3 and figures["micro_f1"] >= 0.9
    assert {name: row["support"] for name, row in figures["per_class"].items()} == \
        dict(zip(TAGS, (3 * LABELS.sum(axis=0)).tolist()))
    assert figures["thresholds"] == report["validation"]["thresholds"]
    table = run_zoo("evaluate", out, "--data", tiny_tags_csv, "--label-column", "labels", "--split", "validation")
    assert table.returncode == 0, table.stderr
    assert "threshold  precision" in table.stdout and "split: validation" in table.stdout

    texts = list(EXAMPLES)
    predict = run_zoo("predict", out, *texts, "--json")
    assert predict.returncode == 0, predict.stderr
    rows = [json.loads(line) for line in predict.stdout.splitlines()]
    assert [row["text"] for row in rows] == texts
    assert [sorted(label["label"] for label in row["labels"]) for row in rows] == list(EXAMPLES.values())
    thresholds = dict(zip(TAGS, report["validation"]["thresholds"]))
    assert all(label["score"] >= thresholds[label["label"]] for row in rows for label in row["labels"])
    plain = run_zoo("predict", out, *texts).stdout.splitlines()
    assert plain[2] == f"(no label over its threshold)\t{texts[2]}"
    assert re.fullmatch(r"(politics|weather) [01]\.\d{4}, (politics|weather) [01]\.\d{4}\t" + re.escape(texts[1]),
                        plain[1])

    # Exported with its own data (label lists), and the phone file answers what the .keras file answers.
    exported = run_zoo("export", out, "--root", tmp_path / "serving", "--format", "litert", "--variants", "none",
                       "--data", tiny_tags_csv, "--label-column", "labels")
    assert exported.returncode == 0, exported.stderr
    from_file = run_zoo("predict", tmp_path / "serving" / "tagger" / "1" / "litert" / "model.tflite", *texts, "--json")
    assert from_file.returncode == 0, from_file.stderr
    assert [[label["label"] for label in json.loads(line)["labels"]] for line in from_file.stdout.splitlines()] == \
        [[label["label"] for label in row["labels"]] for row in rows]

    # A label the model does not know is a one-line error naming file, line and field.
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"text": "a vote", "labels": ["politics", "cooking"]}\n')
    assert "wrong.jsonl:1: field 'labels': unknown label 'cooking'" in error_line(
        run_zoo("evaluate", out, "--data", wrong, "--label-column", "labels"))


def test_a_strategy_is_refused_in_one_line_before_any_data_is_read(tmp_path):
    # zoo.distributed's step computes sparse cross-entropy and accuracy: it does not train label sets.
    with pytest.raises(ValueError, match=r"^cnn_multi_label_classifier: strategy= trains single-label classifiers"):
        train_classifier("cnn_multi_label_classifier", tmp_path / "no-such-file.csv", strategy="mirrored")


def test_labels_over_thresholds_keeps_scores_at_or_above_each_labels_own_threshold_best_first():
    from zoo.evaluation import labels_over_thresholds

    scores = np.array([0.5, 0.9, 0.3, 0.7], np.float32)
    assert labels_over_thresholds(scores, ["a", "b", "c", "d"], [0.5, 0.95, 0.2, 0.1]) == [
        ("d", pytest.approx(0.7)), ("a", 0.5), ("c", pytest.approx(0.3))]
    assert labels_over_thresholds(scores, ["a", "b", "c", "d"], [1.0] * 4) == []
