"""The train report scores the whole classifier, its Naive Bayes branch alone and its network alone."""

import json

import numpy as np

from tests import helpers
from zoo import load_texts, training


def test_the_train_report_has_each_parts_validation_accuracy(tmp_path):
    rows = [(text, ["neg", "pos"][label]) for text, label in zip(helpers.TEXTS * 4, np.tile(helpers.LABELS, 4))]
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    result = training.train_classifier("cnn_classifier", data, out_dir=tmp_path / "model", epochs=1, batch_size=8,
                                       verbose=0, seed=3, validation_fraction=0.25, sequence_length=16,
                                       embedding_dim=8, hidden_dim=8)
    report = json.loads((tmp_path / "model" / "train_report.json").read_text())
    _, validation = load_texts(data).split(0.25, 3)
    expected = result.model.part_accuracies(validation.texts, validation.labels)
    assert report["parts"] == result.report["parts"] == {part: round(value, 4) for part, value in expected.items()}
    assert set(report["parts"]) == {"whole", "branch", "deep"}
    assert report["parts"]["whole"] == round(report["validation"]["accuracy"], 4)


def test_a_classifier_without_the_branch_reports_its_whole_only(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in zip(helpers.TEXTS * 2,
                                                                                          np.tile(helpers.LABELS, 2))))
    result = training.train_classifier("cnn_classifier", data, out_dir=tmp_path / "model", epochs=1, batch_size=8,
                                       verbose=0, sequence_length=16, embedding_dim=8, hidden_dim=8,
                                       naive_bayes_buckets=0)
    assert result.report["parts"] == {"whole": round(result.validation.accuracy, 4)}


def test_the_accuracy_benchmarks_table_has_the_branch_and_deep_columns():
    from benchmarks.classifier_accuracy import markdown_table

    output = {"results": [
        {"model": "naive_bayes_bigram (peer)", "seed": 1, "validation_accuracy": 0.75},
        {"model": "lstm_classifier", "seed": 1, "validation_accuracy": 0.786, "best_epoch": 4, "epochs_run": 7,
         "train_seconds": 120.5, "branch_alone_accuracy": 0.77, "deep_alone_accuracy": 0.641},
    ]}
    assert markdown_table(output).splitlines() == [
        "| model | seed | validation accuracy | branch alone | deep alone | best epoch / run | train seconds |",
        "|---|---|---|---|---|---|---|",
        "| naive_bayes_bigram (peer) | 1 | 75.0% |  |  |  |  |",
        "| lstm_classifier | 1 | 78.6% | 77.0% | 64.1% | 4/7 | 120.5 |",
    ]


def test_the_accuracy_benchmarks_table_has_the_window_and_size_columns_when_recorded():
    from benchmarks.classifier_accuracy import markdown_table

    output = {"results": [
        {"model": "tfidf + linear_svc (peer)", "seed": 1, "validation_accuracy": 0.771, "train_seconds": 0.9},
        {"model": "cnn_classifier", "seed": 1, "validation_accuracy": 0.79, "best_epoch": 3, "epochs_run": 6,
         "train_seconds": 105.0, "branch_alone_accuracy": 0.77, "deep_alone_accuracy": 0.626,
         "sequence_length": 48, "truncated_share": 0.012, "model_bytes": 15 * 2**20},
    ]}
    assert markdown_table(output).splitlines()[2:] == [
        "| tfidf + linear_svc (peer) | 1 | 77.1% |  |  |  |  | 0.9 |  |",
        "| cnn_classifier | 1 | 79.0% | 77.0% | 62.6% | 48 (1%) | 3/6 | 105.0 | 15.0 |",
    ]
