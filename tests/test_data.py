"""Loaders for every layout, encodings, splits, and one-line errors."""

import contextlib
import json
import os
import threading

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
    assert_one_line_error(r"d\.csv:3: byte 0xe9 \(column 4, offset 19\) is not valid utf-8", path, encoding="utf-8")
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


# === Data that used to be read wrongly without a word ===


def test_a_repeated_text_or_label_column_is_refused(tmp_path):
    message = assert_one_line_error(r"d\.csv:1: column 'text' appears 2 times in the header \(columns 1, 3\)",
                                    write(tmp_path / "d.csv", "text,label,text\na,pos,b\nc,neg,d\n"))
    assert "rename" in message
    assert_one_line_error(r"d\.tsv:1: column 'label' appears 2 times",
                          write(tmp_path / "d.tsv", "label\ttext\tlabel\npos\ta\tneg\n"))
    # A repeated column that is not read is harmless.
    assert load_texts(write(tmp_path / "ok.csv", "note,text,label,note\nx,a,pos,y\nx,b,neg,y\n")).texts == ("a", "b")
    assert_one_line_error(r"d\.jsonl:1: field 'text' appears more than once",
                          write(tmp_path / "d.jsonl", '{"text": "a", "label": "pos", "text": "b"}\n'))


def test_one_legacy_line_in_a_utf8_file_is_an_error_naming_its_place(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ncafé crème,pos\n".encode() + b"na\xefve,neg\n")
    message = assert_one_line_error(r"d\.csv:3: byte 0xef \(column 3, offset 30\) is not valid UTF-8, yet the "
                                    r"file holds UTF-8 text", path)
    assert "--encoding" in message
    # The way out: the whole file's encoding, given.
    assert load_texts(path, encoding="cp1252").texts[1] == "naïve"


def test_each_file_of_a_folder_is_decoded_on_its_own(tmp_path):
    write(tmp_path / "pos" / "utf8.txt", "café")
    write(tmp_path / "pos" / "legacy.txt", b"caf\xe9 \x93cr\xe8me\x94")
    write(tmp_path / "neg" / "bom16.txt", "\ufeffdéjà vu".encode("utf-16-le"))
    write(tmp_path / "neg" / "bom8.txt", "\ufeffnaïve".encode())
    dataset = load_texts(tmp_path)
    assert sorted(dataset.texts) == ["café", "café \u201ccrème\u201d", "déjà vu", "naïve"]
    assert dataset.encoding == "cp1252+utf-16+utf-8"
    # The recorded mix reads the folder again (zoo evaluate and export pass it back).
    assert load_texts(tmp_path, encoding=dataset.encoding).texts == dataset.texts


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = write(tmp_path / "d.csv", "\ufefftext,label\na,pos\nb,neg\n".encode())
    assert load_texts(path, encoding="utf-8").texts == ("a", "b")
    utf16 = write(tmp_path / "d16.csv", "\ufefftext,label\nâ,pos\nb,neg\n".encode("utf-16-le"))
    assert load_texts(utf16).texts == ("â", "b")


def test_a_root_split_into_train_and_test_is_refused(tmp_path):
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            write(tmp_path / "aclImdb" / split / label / "0_1.txt", f"{split} {label}")
    write(tmp_path / "aclImdb" / "imdb.vocab", "the\n")
    message = assert_one_line_error(r"aclImdb: looks like a dataset split into test/, train/", tmp_path / "aclImdb")
    assert str(tmp_path / "aclImdb" / "train") in message
    assert load_texts(tmp_path / "aclImdb" / "train").class_names == ("neg", "pos")


def test_files_beside_class_folders_are_named_in_a_warning(tmp_path, caplog):
    write(tmp_path / "pos" / "1.txt", "good")
    write(tmp_path / "neg" / "1.txt", "bad")
    write(tmp_path / "urls_pos.txt", "http://example.com")
    with caplog.at_level("WARNING", logger="zoo.data"):
        dataset = load_texts(tmp_path)
    assert len(dataset) == 2
    assert "ignoring 1 file(s) beside the class folders (urls_pos.txt)" in caplog.text


def test_an_empty_class_folder_or_class_file_is_an_error(tmp_path):
    write(tmp_path / "folders" / "pos" / "1.txt", "good")
    write(tmp_path / "folders" / "neg" / "1.txt", "bad")
    (tmp_path / "folders" / "meh").mkdir()
    assert_one_line_error(r"folders/meh: empty class folder", tmp_path / "folders")
    write(tmp_path / "files" / "r.pos", "good\n")
    write(tmp_path / "files" / "r.neg", "bad\n")
    write(tmp_path / "files" / "r.meh", "\n \n")
    assert_one_line_error(r"files/r\.meh: no examples", tmp_path / "files")


def test_class_files_whose_names_would_clash_are_refused(tmp_path):
    write(tmp_path / "rt-polarity.pos", "good\n")
    write(tmp_path / "rt-polarity.neg", "bad\n")
    write(tmp_path / "README.txt", "about\n")
    assert_one_line_error(r"files rt-polarity\.neg, rt-polarity\.pos would all be class 'rt-polarity'", tmp_path)


def test_one_number_written_two_ways_is_an_error(tmp_path):
    message = assert_one_line_error(r"d\.csv:4: field 'label': label '01' is the number 1 written differently from "
                                    r"'1' at .*d\.csv:2", write(tmp_path / "d.csv", "text,label\na,1\nb,0\nc,01\n"))
    assert "one way" in message
    assert_one_line_error(r"label '\u0661' is the number 1", write(tmp_path / "u.csv", "text,label\na,1\nb,0\nc,\u0661\n"))
    jsonl = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "+1"}\n{"text": "c", "label": 0}\n')
    assert_one_line_error(r"d\.jsonl:2: field 'label': label '\+1' is the number 1", jsonl)


@pytest.mark.parametrize(
    "labels, names, ids",
    [
        (["-1", "1", "1"], ("-1", "1"), [0, 1, 1]),
        (["-1", "0", "1"], ("-1", "0", "1"), [0, 1, 2]),
        (["5", "1", "3", "10"], ("1", "3", "5", "10"), [2, 0, 1, 3]),
        (["01", "02", "10"], ("01", "02", "10"), [0, 1, 2]),
        (["\u0661", "\u0662"], ("\u0661", "\u0662"), [0, 1]),
        (["\u00b9", "\u00b2"], ("\u00b2", "\u00b9"), [1, 0]),
        (["1", "0", "2"], ("0", "1", "2"), [1, 0, 2]),
    ],
)
def test_integer_labels_other_than_0_to_n_are_class_names_in_numeric_order(tmp_path, labels, names, ids):
    rows = "".join(f"t{i},{label}\n" for i, label in enumerate(labels))
    dataset = load_texts(write(tmp_path / "d.csv", "text,label\n" + rows))
    assert (dataset.class_names, dataset.labels.tolist()) == (names, ids)


def test_given_class_names_read_labels_by_name_before_id(tmp_path):
    # A model trained on star ratings 1..5 has class names "1".."5": reading its data again keeps them.
    path = write(tmp_path / "d.csv", "text,label\na,1\nb,5\n")
    assert load_texts(path, class_names=["1", "2", "3", "4", "5"]).labels.tolist() == [0, 4]
    assert load_texts(path, class_names=[f"c{i}" for i in range(6)]).labels.tolist() == [1, 5]


def test_all_empty_texts_are_an_error(tmp_path):
    assert_one_line_error(r"d\.csv: all 2 texts are empty \(field 'text'\)", write(tmp_path / "d.csv", 'text,label\n"",a\n" ",b\n'))
    write(tmp_path / "folder" / "pos" / "1.txt", "\n")
    write(tmp_path / "folder" / "neg" / "1.txt", "")
    assert_one_line_error(r"folder: all 2 texts are empty;", tmp_path / "folder")


@contextlib.contextmanager
def fed_fifo(path, content=b"text,label\na,pos\nb,neg\n"):
    """A FIFO at `path` with a writer behind it: a loader that wrongly reads it gets data (and the test fails)
    instead of blocking for ever."""
    os.mkfifo(path)

    def feed():
        with open(path, "wb") as fifo:
            fifo.write(content)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        # Release a writer still waiting for a reader: it writes into the pipe's buffer and closes.
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(timeout=10)
        os.close(reader)


def test_a_fifo_or_device_is_refused_before_reading(tmp_path):
    with fed_fifo(tmp_path / "d.csv") as fifo:
        assert_one_line_error(r"d\.csv: a named pipe \(FIFO\), not a regular file or folder", fifo)
    with fed_fifo(tmp_path / "corpus.txt") as fifo, pytest.raises(DataError, match=r"a named pipe \(FIFO\)"):
        load_corpus(fifo)
    write(tmp_path / "folder" / "neg" / "1.txt", "bad")
    write(tmp_path / "folder" / "pos" / "1.txt", "good")
    with fed_fifo(tmp_path / "folder" / "neg" / "2.txt", b"worse"):
        assert_one_line_error(r"2\.txt: a named pipe \(FIFO\)", tmp_path / "folder")
    assert_one_line_error(r"/dev/null: a character device", "/dev/null")


def test_utf16_without_a_byte_order_mark_and_an_open_quote_are_named(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,pos\nb,neg\n".encode("utf-16-le"))
    assert_one_line_error(r"d\.csv: looks like UTF-16 without a byte-order mark", path)
    assert load_texts(path, encoding="utf-16-le").texts == ("a", "b")
    assert_one_line_error(r"d2\.csv:4: row has fewer fields than the header; is a quote left open\?",
                          write(tmp_path / "d2.csv", 'text,label\n"open,pos\nb,neg\nc,pos\n'))
