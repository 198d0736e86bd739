"""Memory estimated before training: refusals naming the cause, and long texts that no longer blow up."""

import tracemalloc

import keras
import numpy as np
import pytest

from tests import helpers
from zoo import memory
from zoo.data import DataError, TextDataset
from zoo.layers import NaiveBayesNgramLogits
from zoo.training import train_classifier

CONFIG = {"vocabulary_size": 1000, "naive_bayes_buckets": 9000, "embedding_dim": 8}


def dataset(labels, texts=None, class_names=None):
    labels = np.asarray(labels, dtype=np.int32)
    texts = texts or tuple(f"text {i}" for i in range(len(labels)))
    names = class_names or tuple(f"c{i}" for i in range(labels.max() + 1))
    return TextDataset(tuple(texts), labels, names, "/data/d.csv", "utf-8")


def test_the_estimate_follows_classes_features_and_the_longest_text():
    estimate = memory.estimate_classifier_training(CONFIG, dataset([0, 1, 2, 0], texts=["a", "b" * 500, "c", "d"]))
    by_kind = {part.description.split()[0]: part.bytes for part in estimate.parts}
    assert by_kind["Naive"] == 3 * 10_000 * memory.NAIVE_BAYES_BYTES_PER_CELL
    assert by_kind["a"] == 1000 * 8 * memory.EMBEDDING_BYTES_PER_CELL
    assert by_kind["tokenizing"] == 500 * memory.TOKENIZING_BYTES_PER_CHARACTER
    assert estimate.largest.description == "Naive Bayes tables of 3 classes x 10,000 n-gram features"
    without = memory.estimate_classifier_training(dict(CONFIG, naive_bayes_buckets=0), dataset([0, 1]))
    assert not any(part.description.startswith("Naive Bayes") for part in without.parts)


def test_a_run_that_cannot_fit_is_refused_naming_the_cause():
    many_classes = dataset(np.arange(400) % 100)
    with pytest.raises(memory.MemoryEstimateError) as info:
        memory.check_classifier_training(CONFIG, many_classes, available=5 * 10**7)
    message = str(info.value)
    assert message.startswith("training needs about 44 MB of memory, more than 80% of the 50 MB available: "
                              "Naive Bayes tables of 100 classes x 10,000 n-gram features = 44 MB; ")
    assert "naive_bayes_buckets=0" in message and "\n" not in message
    assert memory.check_classifier_training(CONFIG, many_classes, available=10**8).total == 44_128_160


def test_a_label_per_row_is_refused_and_few_examples_per_class_are_warned_about(caplog):
    with pytest.raises(DataError, match=r"d\.csv: 6 classes for 6 rows \(each label has 1 example; their Naive "
                                        r"Bayes tables need .* MB\): is the label column 'text' right\?"):
        memory.check_classifier_training(CONFIG, dataset(range(6)), "text", available=10**12)
    with caplog.at_level("WARNING", logger="zoo.memory"):
        memory.check_classifier_training(CONFIG, dataset([0, 0, 1, 1, 2, 2]), "id", available=10**12)
    assert "3 classes for 6 rows (2.0 examples per class" in caplog.text and "'id' right?" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="zoo.memory"):
        memory.check_classifier_training(CONFIG, dataset([0, 1] * 5), available=10**12)
    assert caplog.text == ""


def test_train_classifier_checks_before_any_work(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(20)))
    monkeypatch.setattr(memory, "available_memory", lambda: 10**4)
    with pytest.raises(memory.MemoryEstimateError, match=r"of the 10 kB available: Naive Bayes tables of 2 classes"):
        train_classifier("lstm_classifier", path, out_dir=tmp_path / "out", epochs=1,
                         **helpers.tiny_config("lstm_classifier"))
    assert not (tmp_path / "out").exists()


def test_one_long_text_costs_its_own_size_not_rows_times_its_size():
    # Keras and keras-hub turn a Python list of texts into a fixed-width NumPy array: here 41 rows x 1 MB x 4
    # bytes = 164 MB, where the texts themselves are 1 MB.
    model = helpers.build_tiny("lstm_classifier")
    texts = list(helpers.TEXTS[:40]) + ["good film " * 100_000]
    labels = np.concatenate([helpers.LABELS[:40], [1]])
    tracemalloc.start()
    try:
        model.adapt(texts, labels)
        model.predict(texts, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 10**6, f"{peak / 1e6:.0f} MB traced"
    assert model.predict_labels(texts[-1:])[0][0] in model.class_names


def test_naive_bayes_fits_its_tables_in_place():
    # The tables are classes x features (282,144 features by default): fit works on one float32 array of
    # that size (and the copy assigning it makes) beside the weights, not on float64 copies.
    layer = NaiveBayesNgramLogits(1000, 50, bigram_buckets=2**16)
    cells = layer.num_features * layer.num_classes
    token_ids = np.random.default_rng(0).integers(0, 1000, size=(200, 16)).astype("int32")
    layer.build(token_ids.shape)
    tracemalloc.start()
    try:
        layer.fit(token_ids, np.arange(200) % 50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * cells, f"{peak / cells:.1f} bytes per table cell"
    table = keras.ops.convert_to_numpy(layer.table)
    assert table.dtype == np.float32 and np.all(np.isfinite(table)) and np.any(table != 0)
