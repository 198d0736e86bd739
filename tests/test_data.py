"""Loaders for every layout, encodings, splits, and one-line errors."""

import json

import numpy as np
import pytest

from zoo.data import DataError, default_dataset_path, load_texts


def write(path, content, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def assert_one_line_error(match, *args, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        load_texts(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_csv_with_string_labels(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"good, really",pos\nbad,neg\nfine,pos\n')
    dataset = load_texts(path)
    assert dataset.texts == ("good, really", "bad", "fine")
    assert dataset.class_names == ("neg", "pos")
    assert dataset.labels.tolist() == [1, 0, 1]
    assert dataset.encoding == "utf-8"


def test_tsv_with_integer_labels_and_custom_columns(tmp_path):
    path = write(tmp_path / "d.tsv", "review\tstars\ngood\t2\nbad\t0\nok\t1\n")
    dataset = load_texts(path, text_column="review", label_column="stars")
    assert dataset.labels.tolist() == [2, 0, 1]
    assert dataset.class_names == ("0", "1", "2")
    named = load_texts(path, text_column="review", label_column="stars", class_names=["bad", "ok", "good"])
    assert named.class_names == ("bad", "ok", "good")


def test_jsonl(tmp_path):
    lines = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}, {"text": "ünïcode", "label": 1}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    dataset = load_texts(path)
    assert dataset.texts == ("good", "bad", "ünïcode")
    assert dataset.labels.tolist() == [1, 0, 1]


def test_folder_per_class_like_aclimdb(tmp_path):
    write(tmp_path / "pos" / "1.txt", "great movie\n")
    write(tmp_path / "pos" / "2.txt", "loved it")
    write(tmp_path / "neg" / "1.txt", b"awful \x93film\x94")
    dataset = load_texts(tmp_path)
    assert dataset.class_counts() == {"neg": 1, "pos": 2}
    assert "awful \u201cfilm\u201d" in dataset.texts
    assert dataset.encoding == "cp1252+utf-8"


def test_file_per_class_cp1252_like_rt_polarity(tmp_path):
    write(tmp_path / "reviews.pos", b"a charming caf\xe9 story \x85\nso good\n")
    write(tmp_path / "reviews.neg", b"dull\n\nboring\n")
    dataset = load_texts(tmp_path)
    assert dataset.class_names == ("neg", "pos")
    assert "a charming café story …" in dataset.texts
    assert len(dataset) == 4
    assert dataset.encoding == "cp1252+utf-8"


def test_bundled_rt_polarity():
    dataset = load_texts()
    assert dataset.source == str(default_dataset_path())
    assert len(dataset) == 10662
    assert dataset.class_counts() == {"neg": 5331, "pos": 5331}
    assert dataset.encoding == "cp1252"
    assert any("\u2026" in text or "\u2014" in text for text in dataset.texts)


def test_split_is_deterministic_and_disjoint(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(100)))
    dataset = load_texts(path)
    train, validation = dataset.split(0.1, seed=7)
    again_train, again_validation = dataset.split(0.1, seed=7)
    assert (len(train), len(validation)) == (90, 10)
    assert validation.texts == again_validation.texts
    assert not set(train.texts) & set(validation.texts)
    assert dataset.split(0.1, seed=8)[1].texts != validation.texts


def test_tf_dataset_batches(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(10)))
    batches = list(load_texts(path).to_tf_dataset(batch_size=4))
    assert [len(texts) for texts, _ in batches] == [4, 4, 2]
    assert batches[0][0].dtype.name == "string" and batches[0][1].dtype.name == "int32"


def test_missing_file(tmp_path):
    assert_one_line_error(r"nope\.csv: no such file", tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    assert_one_line_error(r"e\.csv: empty file", write(tmp_path / "e.csv", ""))
    assert_one_line_error(r"e\.jsonl: no examples", write(tmp_path / "e.jsonl", "\n"))


def test_missing_column(tmp_path):
    message = assert_one_line_error(r"d\.csv:1: missing column 'label'", write(tmp_path / "d.csv", "text,stars\nok,1\n"))
    assert "'stars'" in message
    assert_one_line_error(r"d\.jsonl:2: missing field 'text'", write(tmp_path / "d.jsonl", '{"text":"a","label":1}\n{"label":0}\n'))


def test_undecodable_bytes_with_explicit_encoding(tmp_path):
    path = write(tmp_path / "d.csv", b"text,label\nok,1\ncaf\xe9,0\n")
    assert_one_line_error(r"d\.csv:3: byte 0xe9 is not valid utf-8", path, encoding="utf-8")
    assert load_texts(path).texts == ("ok", "café")


def test_single_class(tmp_path):
    assert_one_line_error(r"only one class \('pos'\)", write(tmp_path / "d.csv", "text,label\na,pos\nb,pos\n"))


def test_non_numeric_label_among_numbers(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,1\nb,0\nc,1\nd,oops\n")
    assert_one_line_error(r"d\.csv:5: field 'label': expected an integer class id .* got 'oops'", path)


def test_bad_json_and_bad_label_types(tmp_path):
    assert_one_line_error(r"d\.jsonl:2: invalid JSON", write(tmp_path / "d.jsonl", '{"text":"a","label":1}\n{oops\n'))
    assert_one_line_error(
        r"b\.jsonl:1: field 'label': expected a class name or integer id",
        write(tmp_path / "b.jsonl", '{"text":"a","label":1.5}\n{"text":"b","label":0}\n'),
    )
    assert_one_line_error(
        r"t\.jsonl:1: field 'text': expected a string", write(tmp_path / "t.jsonl", '{"text":3,"label":1}\n')
    )


def test_class_id_out_of_range_for_given_names(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,0\nb,2\n")
    assert_one_line_error(r"d\.csv:3: field 'label': class id 2 is outside 0\.\.1", path, class_names=["x", "y"])


def test_unsupported_suffix(tmp_path):
    assert_one_line_error(r"unsupported file type '\.txt'", write(tmp_path / "d.txt", "hello"))


def test_labels_are_int32_array(tmp_path):
    dataset = load_texts(write(tmp_path / "d.csv", "text,label\na,x\nb,y\n"))
    assert isinstance(dataset.labels, np.ndarray) and dataset.labels.dtype == np.int32
