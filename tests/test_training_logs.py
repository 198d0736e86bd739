"""What a training run leaves for people: TensorBoard logs per run, and the confusion matrix as a picture."""

import json

import pytest

from tests import helpers


@pytest.mark.slow
def test_training_writes_tensorboard_logs_and_evaluate_draws_the_confusion_matrix(tmp_path):
    import subprocess
    import sys

    import tensorflow as tf

    from zoo.training import train_classifier

    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": text, "label": int(label)}) + "\n"
                            for text, label in zip(helpers.TEXTS, helpers.LABELS)), encoding="utf-8")
    train_classifier("cnn_classifier", data, out_dir=tmp_path / "model", epochs=2, verbose=0, vocabulary_size=64,
                     embedding_dim=8, hidden_dim=8)
    (run,) = (tmp_path / "model" / "logs").iterdir()
    events = list((run / "validation").glob("events.out.tfevents.*"))
    tags = {value.tag for event in tf.compat.v1.train.summary_iterator(str(events[0])) for value in event.summary.value}
    assert {"epoch_loss", "epoch_accuracy"} <= tags

    png = tmp_path / "confusion.png"
    result = subprocess.run([sys.executable, "-m", "zoo", "evaluate", str(tmp_path / "model"), "--data", str(data),
                             "--confusion-png", str(png)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "accuracy" in result.stdout


def test_a_multi_label_report_has_no_confusion_matrix_to_draw(tmp_path):
    import numpy as np

    from zoo.evaluation import MultiLabelReport, write_confusion_png

    report = MultiLabelReport(("a", "b"), (0.5, 0.5), np.zeros(2), np.zeros(2), np.zeros(2), 0)
    with pytest.raises(ValueError, match="multi-label"):
        write_confusion_png(report, tmp_path / "x.png")
