"""Loaders for every layout, encodings, splits, and one-line errors."""

import json

import numpy as np
import pytest

from zoo.data import DataError, default_dataset_path, load_corpus, load_texts


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
    assert dataset.source == str(default_dataset_path().resolve())
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


# === Multi-label data: a list of labels per text ===

TAGS_CSV = 'text,labels\n"o romeo, romeo",ROMEO\nthe nurse calls,NURSE|JULIET\na quiet street,\n" both "," ROMEO | JULIET "\n'


def test_multi_label_csv_lists_labels_with_a_separator(tmp_path):
    dataset = load_texts(write(tmp_path / "d.csv", TAGS_CSV), label_column="labels", multi_label=True)
    assert dataset.multi_label and dataset.class_names == ("JULIET", "NURSE", "ROMEO")
    assert dataset.texts == ("o romeo, romeo", "the nurse calls", "a quiet street", " both ")
    # An empty field is a text with no label; names are stripped.
    assert dataset.labels.tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1]]
    assert dataset.labels.dtype == np.int32
    assert dataset.class_counts() == {"JULIET": 2, "NURSE": 1, "ROMEO": 2}


def test_multi_label_tsv_with_a_custom_separator_and_fixed_names(tmp_path):
    path = write(tmp_path / "d.tsv", "text\ttags\ngood|bad\tpos;neg\nfine\tpos\n")
    dataset = load_texts(path, label_column="tags", multi_label=True, label_separator=";",
                         class_names=["pos", "neg", "meh"])
    assert dataset.texts == ("good|bad", "fine") and dataset.class_names == ("pos", "neg", "meh")
    assert dataset.labels.tolist() == [[1, 1, 0], [1, 0, 0]]


def test_multi_label_jsonl_lists(tmp_path):
    lines = [{"text": "a", "tags": ["x", "y"]}, {"text": "b", "tags": []}, {"text": "c", "tags": [" y "]}]
    dataset = load_texts(write(tmp_path / "d.jsonl", "\n".join(map(json.dumps, lines))), label_column="tags",
                         multi_label=True)
    assert dataset.class_names == ("x", "y") and dataset.labels.tolist() == [[1, 1], [0, 0], [0, 1]]


def test_multi_label_split_and_tf_dataset(tmp_path):
    rows = "".join(f"t{i},a{'|b' * (i % 2)}{'|c' * (i % 3 == 0)}\n" for i in range(40))
    path = write(tmp_path / "d.csv", "text,label\n" + rows)
    dataset = load_texts(path, multi_label=True)
    train, validation = dataset.split(0.25, seed=3)
    # The same seeded split as single-label data: the same texts on each side, labels kept with their texts.
    single_train, single_validation = load_texts(path).split(0.25, seed=3)
    assert validation.texts == single_validation.texts and train.texts == single_train.texts
    by_text = dict(zip(dataset.texts, dataset.labels.tolist()))
    assert [by_text[text] for text in validation.texts] == validation.labels.tolist()
    batches = list(train.to_tf_dataset(batch_size=8))
    assert [tuple(labels.shape) for _, labels in batches] == [(8, 3)] * 3 + [(6, 3)]
    assert batches[0][1].dtype.name == "int32" and batches[0][0].dtype.name == "string"


@pytest.mark.parametrize(
    "file_name, content, match",
    [
        ("d.jsonl", '{"text":"a","labels":["x"]}\n{"text":"b","labels":"x|y"}\n',
         r"d\.jsonl:2: field 'labels': expected a JSON list of label names .* got \"x\|y\""),
        ("d.jsonl", '{"text":"a","labels":["x", 3]}\n', r"d\.jsonl:1: field 'labels': expected a JSON list .* got \[\"x\", 3\]"),
        ("d.jsonl", '{"text":"a","labels":null}\n', r"d\.jsonl:1: field 'labels': expected a JSON list .* got null"),
        ("d.jsonl", '{"text":"a","labels":[["x"]]}\n', r"d\.jsonl:1: field 'labels': expected a JSON list"),
        ("d.jsonl", '{"text":"a","labels":["x", " "]}\n', r"d\.jsonl:1: field 'labels': expected a JSON list"),
        ("d.csv", "text,labels\na,x|y\nb,x||y\n", r"d\.csv:3: field 'labels': empty label name in 'x\|\|y'"),
        ("d.csv", "text,labels\na,x\nb,x\n", r"d\.csv: only 1 label name\(s\) \('x'\) found"),
        ("d.txt", "a", r"d\.txt: multi-label data must be a \.csv, \.tsv or \.jsonl file"),
    ],
)
def test_multi_label_bad_rows_are_one_line_errors(tmp_path, file_name, content, match):
    assert_one_line_error(match, write(tmp_path / file_name, content), label_column="labels", multi_label=True)


def test_multi_label_unknown_label_and_folders(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,x|y\nb,z\n")
    assert_one_line_error(r"d\.csv:3: field 'labels': unknown label 'z'; expected some of \['x', 'y'\]", path,
                          label_column="labels", multi_label=True, class_names=["x", "y"])
    assert_one_line_error(r"label_separator must be a non-blank string", path, label_column="labels",
                          multi_label=True, label_separator=" ")
    write(tmp_path / "folder" / "pos" / "1.txt", "good")
    assert_one_line_error(r"folder: multi-label data must be", tmp_path / "folder", multi_label=True)


def test_a_relative_data_path_is_recorded_absolute(tmp_path, monkeypatch):
    # Reports name the data by `source`, and `zoo export` reads it again later, from any folder.
    (tmp_path / "reviews.csv").write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_texts("reviews.csv").source == str(tmp_path / "reviews.csv")
    (tmp_path / "corpus.txt").write_text("to be or not to be\n" * 50, encoding="utf-8")
    assert load_corpus("corpus.txt").source == str(tmp_path / "corpus.txt")
