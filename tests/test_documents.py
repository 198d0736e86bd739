"""Long documents: the window rule in NumPy (zoo.runtime.documents) and in TensorFlow (zoo.models.documents) agree,
and a classifier reading a document whole averages its windows."""

import numpy as np
import pytest

from zoo.runtime import documents


def test_windows_are_spread_evenly_from_the_first_token_to_the_last():
    assert documents.window_starts(0, 4) == [0]
    assert documents.window_starts(4, 4) == [0]
    assert documents.window_starts(5, 4) == [0, 1]  # two windows, overlapping by three tokens
    assert documents.window_starts(8, 4) == [0, 4]
    assert documents.window_starts(10, 4) == [0, 3, 6]
    # Past max_windows * window the windows sample the text evenly.
    assert documents.window_starts(100, 4, max_windows=3) == [0, 48, 96]
    windows, owners = documents.split_into_windows([[1, 2, 3, 4, 5], [], [6, 7]], window=4)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [2, 3, 4, 5], [0, 0, 0, 0], [6, 7, 0, 0]])
    np.testing.assert_array_equal(owners, [0, 0, 1, 2])
    np.testing.assert_allclose(documents.pool([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.5, 0.5]], owners, 3),
                               [[0.5, 0.5], [0.2, 0.8], [0.5, 0.5]])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="max_windows: expected an integer >= 1"):
            documents.split_into_windows([[1]], window=4, max_windows=bad)


def test_tensorflow_windows_are_the_numpy_rule_s():
    import tensorflow as tf

    from zoo.models.documents import document_windows, pool_windows

    rng = np.random.default_rng(0)
    for window, max_windows in ((4, 16), (4, 3), (7, 2), (64, 16)):
        lists = [list(rng.integers(1, 50, size=int(n))) for n in rng.integers(0, 40 * window // 4, size=25)]
        lists += [[], [3]]
        expected, expected_owners = documents.split_into_windows(lists, window, max_windows)
        windows, owners = document_windows(tf.ragged.constant(lists, dtype=tf.int32, ragged_rank=1,
                                                              row_splits_dtype=tf.int64), window, max_windows)
        np.testing.assert_array_equal(windows.numpy(), expected)
        np.testing.assert_array_equal(owners.numpy(), expected_owners)
        probabilities = rng.random((len(expected), 3)).astype(np.float32)
        np.testing.assert_allclose(pool_windows(probabilities, owners, len(lists)).numpy(),
                                   documents.pool(probabilities, expected_owners, len(lists)), atol=1e-6)
    none, owners = document_windows(tf.ragged.constant([[], []], dtype=tf.int32), 4)
    np.testing.assert_array_equal(none.numpy(), np.zeros((2, 4)))


def test_a_classifier_reads_a_long_text_whole_and_a_short_one_as_predict_does():
    from tests import helpers
    from zoo.models.documents import predict_documents

    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    window = model.sequence_length
    short = list(helpers.TEXTS[:4])
    long = " ".join(helpers.TEXTS * 3)
    got = model.predict_documents(short + [long], batch_size=3)
    np.testing.assert_allclose(got, predict_documents(model, short + [long]), atol=1e-6)
    np.testing.assert_allclose(got[:4], model.predict(short, verbose=0), atol=1e-6)
    ids = model.preprocessor.tokenizer(long).numpy().tolist()
    assert len(ids) > 2 * window  # the long text needs several windows
    windows, owners = documents.split_into_windows([ids], window)
    np.testing.assert_allclose(got[4], model(windows, training=False).numpy().mean(axis=0), atol=1e-6)
    assert predict_documents(model, []).shape == (0, 2)
    with pytest.raises(TypeError, match="takes a list of strings"):
        model.predict_documents("one text")


def test_the_reference_tokenizer_gives_each_text_s_whole_ids_as_the_window_s_first_ones():
    from zoo.preprocessing.reference import ReferenceWordTokenizer

    tokenizer = ReferenceWordTokenizer(["[PAD]", "[UNK]", "a", "b", "!"], sequence_length=3)
    texts = ["a b a b a!", "", "zz b"]
    whole = tokenizer.encode_whole(texts)
    assert [ids.tolist() for ids in whole] == [[2, 3, 2, 3, 2, 4], [], [1, 3]]
    window = tokenizer.encode(texts)
    for ids, row in zip(whole, window):
        assert row[: len(ids)].tolist() == ids[:3].tolist()
    with pytest.raises(TypeError, match="a list of texts"):
        tokenizer.encode_whole("a b")


@pytest.mark.slow
def test_exported_runtime_files_read_documents_as_keras_does(gru_export, tiny_gru):
    import json

    import zoo.runtime
    from zoo.export.tasks.text_classification import document_texts
    from tests import helpers

    report = json.loads((gru_export / "export_report.json").read_text())
    documents = document_texts(helpers.TEXTS)
    expected = tiny_gru.predict_documents(documents)
    for artifact, relative in (("litert float32", "litert/model.tflite"), ("onnx float32", "onnx/model.onnx")):
        assert report["parity"][artifact]["documents_max_abs_diff"] <= 1e-5, artifact  # checked at export
        runner = zoo.runtime.load(gru_export / relative)
        np.testing.assert_allclose(runner.predict_documents(documents), expected, atol=1e-5, err_msg=artifact)
        short = list(helpers.TEXTS[:5])
        np.testing.assert_allclose(runner.predict_documents(short), runner.predict(short), atol=1e-6)
        assert runner.predict_documents([]).shape == (0, 2)
