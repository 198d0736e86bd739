"""What training fits to the data: the window (`sequence_length`) unless set, and duplicates across the splits."""

import json
import logging

import pytest

from tests import helpers
from zoo.training import WINDOW_CAP, fitted_sequence_length, train_classifier

CONFIG = {"sequence_length": 64, "lower": True, "punctuation": "split"}


def test_the_window_covers_most_texts_in_steps_of_64_within_the_default_and_the_cap():
    short = ["a fine film"] * 99 + [" ".join(["word"] * 300)]
    assert fitted_sequence_length(short, CONFIG)["sequence_length"] == 64  # never below the registered default
    long = [" ".join(["word"] * n) for n in range(100, 300)]  # 95th percentile: 289 tokens
    window = fitted_sequence_length(long, CONFIG)
    assert window["sequence_length"] == 320 and window["chosen"] == "from the data"
    assert window["truncated_share"] == 0.0 and window["token_percentiles"]["50"] == 199
    huge = [" ".join(["word"] * 2000)] * 10
    assert fitted_sequence_length(huge, CONFIG)["sequence_length"] == WINDOW_CAP
    assert fitted_sequence_length(huge, CONFIG)["truncated_share"] == 1.0


def test_a_set_window_wins_and_a_warning_says_when_it_cuts_most_texts(caplog):
    long = [" ".join(["word"] * 100)] * 10
    with caplog.at_level(logging.WARNING, logger="zoo"):
        window = fitted_sequence_length(long, dict(CONFIG, sequence_length=16), explicit=True)
    assert window["sequence_length"] == 16 and window["chosen"] == "set" and window["truncated_share"] == 1.0
    assert "sequence_length 16 cuts 100% of the training texts" in caplog.text


@pytest.mark.slow
def test_train_classifier_fits_the_window_and_reports_it(tmp_path):
    data = tmp_path / "long.jsonl"
    filler = " ".join(["and the play goes on"] * 30)  # 150 tokens before the review
    data.write_text("".join(json.dumps({"text": f"{filler} {text}", "label": int(label)}) + "\n"
                            for text, label in zip(helpers.TEXTS * 3, list(helpers.LABELS) * 3)), encoding="utf-8")
    result = train_classifier("cnn_classifier", data, out_dir=tmp_path / "model", epochs=1, verbose=0,
                              vocabulary_size=64, embedding_dim=8, hidden_dim=8)
    assert result.model.sequence_length == 192
    report = json.loads((tmp_path / "model" / "train_report.json").read_text())
    assert report["data"]["window"]["sequence_length"] == 192 and report["data"]["window"]["chosen"] == "from the data"
    assert report["config"]["sequence_length"] == 192


@pytest.mark.slow
def test_duplicates_across_the_splits_are_counted_and_can_be_left_out_of_validation(tmp_path, capsys):
    from zoo.saving import held_out_split

    unique = [(f"{text} take {i}", int(label)) for i, (text, label) in enumerate(zip(helpers.TEXTS * 2,
                                                                                     list(helpers.LABELS) * 2))]
    data = tmp_path / "repeated.jsonl"  # a third of the texts twice: some validation texts are training texts
    data.write_text("".join(json.dumps({"text": text, "label": label}) + "\n"
                            for text, label in unique + unique[::3]), encoding="utf-8")
    tiny = dict(epochs=1, vocabulary_size=64, embedding_dim=8, hidden_dim=8, validation_fraction=0.25)
    kept = train_classifier("cnn_classifier", data, out_dir=tmp_path / "kept", **tiny)
    counted = kept.report["data"]["duplicates_across_splits"]
    assert counted > 0 and f"{counted} of the {kept.report['data']['validation_examples']} validation texts" in \
        capsys.readouterr().out
    dropped = train_classifier("cnn_classifier", data, out_dir=tmp_path / "dropped", drop_duplicates=True, **tiny)
    assert dropped.report["data"]["duplicates_across_splits"] == counted
    assert dropped.report["data"]["validation_examples"] == kept.report["data"]["validation_examples"] - counted
    train, validation = held_out_split(tmp_path / "dropped" / "model.keras")  # export and evaluate see the same
    assert len(validation) == dropped.report["data"]["validation_examples"]
    assert not set(validation.texts) & set(train.texts)
