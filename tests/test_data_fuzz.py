"""Property tests of the loaders: whatever the file, either the data comes back exactly or one clear error.

Generated CSV/TSV/JSONL files (any text, repeated columns, lines in UTF-8
or cp1252, labels spelled any way) and folder layouts (class folders, class
files, files beside them, split roots).
"""

import contextlib
import csv
import io
import json
import pathlib
import tempfile

import hypothesis
import hypothesis.strategies as st
import pytest

from zoo.data import DataError, load_texts

SETTINGS = hypothesis.settings(max_examples=60, deadline=None, derandomize=True,
                               suppress_health_check=[hypothesis.HealthCheck.too_slow])

# Any text a field can hold, delimiters, quotes and line breaks included (NUL aside: csv refuses it).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
label_names = st.sampled_from(["pos", "neg", "meh", "Ünï", "a b", "1", "0", "-1", "01", "+1", "\u0661", "10"])


@contextlib.contextmanager
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield pathlib.Path(name)


def one_line(error):
    message = str(error.value)
    assert "\n" not in message and message
    return message


def delimited(rows, header, delimiter):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@SETTINGS
@hypothesis.given(rows=st.lists(st.tuples(texts, label_names), min_size=2, max_size=12),
                  suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_every_text_and_label_comes_back_as_written_or_one_error(rows, suffix):
    with folder() as root:
        path = root / f"d{suffix}"
        if suffix == ".jsonl":
            path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows),
                            encoding="utf-8")
        else:
            path.write_text(delimited(rows, ["text", "label"], "\t" if suffix == ".tsv" else ","),
                            encoding="utf-8")
        try:
            dataset = load_texts(path)
        except DataError as error:
            # The only refusals for well-formed files: too few classes, all-empty texts, one number written
            # two ways, or a name among mostly numbers (a typo in an id column).
            message = str(error)
            assert "\n" not in message
            labels = {label for _, label in rows}
            numbers = {}
            for label in labels:
                with contextlib.suppress(ValueError):
                    numbers.setdefault(int(label), set()).add(label)
            numeric_rows = sum(label in set().union(*numbers.values()) for _, label in rows)
            assert (len(labels) < 2 or not any(text.strip() for text, _ in rows)
                    or any(len(spellings) > 1 for spellings in numbers.values())
                    or len(rows) // 2 < numeric_rows < len(rows)), message
            return
        assert dataset.texts == tuple(text for text, _ in rows)
        # No two spellings are merged, and no label is renamed.
        assert [dataset.class_names[i] for i in dataset.labels] == [label for _, label in rows]
        assert dataset.encoding == "utf-8"


@SETTINGS
@hypothesis.given(extra=st.lists(st.sampled_from(["text", "label", "note", "id", ""]), max_size=4),
                  order=st.randoms(use_true_random=False))
def test_a_repeated_text_or_label_column_is_always_refused(extra, order):
    header = ["text", "label", *extra]
    order.shuffle(header)
    content = delimited([[f"v{i}" for i in range(len(header))], [f"w{i}" for i in range(len(header))]], header, ",")
    with folder() as root:
        path = root / "d.csv"
        path.write_text(content, encoding="utf-8")
        repeated = [name for name in ("text", "label") if header.count(name) > 1]
        if repeated:
            with pytest.raises(DataError) as error:
                load_texts(path)
            assert f"column {repeated[0]!r} appears {header.count(repeated[0])} times" in one_line(error)
        else:
            dataset = load_texts(path)
            assert dataset.texts == (f"v{header.index('text')}", f"w{header.index('text')}")


# Lines with characters cp1252 has, so that each line can be written either way.
cp1252_texts = st.text(st.sampled_from("abc é€ü“”—ÀÉ"), min_size=1, max_size=12)


@SETTINGS
@hypothesis.given(lines=st.lists(st.tuples(cp1252_texts, st.booleans()), min_size=2, max_size=10))
def test_a_utf8_line_is_never_read_as_cp1252(lines):
    """Each line is written in UTF-8 (True) or cp1252 (False): a UTF-8 line comes back exactly, or the file is
    refused naming a non-UTF-8 line."""
    body = b"".join(text.encode("utf-8" if utf8 else "cp1252") + f",{index % 2}\n".encode()
                    for index, (text, utf8) in enumerate(lines))
    with folder() as root:
        path = root / "d.csv"
        path.write_bytes(b"text,label\n" + body)
        try:
            dataset = load_texts(path)
        except DataError as error:
            message = str(error)
            assert "is not valid UTF-8, yet the file holds UTF-8 text" in message and "--encoding" in message
            line = int(message.split(":")[1])
            text, utf8 = lines[line - 2]
            assert not utf8 and not text.isascii()
            return
        for loaded, (text, utf8) in zip(dataset.texts, lines):
            if utf8 or dataset.encoding == "cp1252":
                assert loaded == text


class_folder_names = st.lists(st.sampled_from(["pos", "neg", "meh", "Ünï", "a b", "1", "x.y"]), min_size=2,
                              max_size=4, unique=True)


@SETTINGS
@hypothesis.given(classes=class_folder_names, data=st.data())
def test_class_folders_give_every_file_its_folder_s_class(classes, data):
    counts = {name: data.draw(st.integers(0, 3), label=name) for name in classes}
    strays = data.draw(st.lists(st.sampled_from(["README", "urls.txt", "imdb.vocab"]), unique=True, max_size=2))
    with folder() as root:
        for name, count in counts.items():
            (root / name).mkdir()
            for index in range(count):
                (root / name / f"{index}.txt").write_text(f"{name} example {index}", encoding="utf-8")
        for stray in strays:
            (root / stray).write_text("not an example", encoding="utf-8")
        empty = sorted(name for name, count in counts.items() if count == 0)
        if empty:
            with pytest.raises(DataError) as error:
                load_texts(root)
            assert f"{empty[0]}: empty class folder" in one_line(error)
            return
        dataset = load_texts(root)
        assert dataset.class_counts() == counts
        assert all(text.startswith(dataset.class_names[label]) for text, label in zip(dataset.texts, dataset.labels))


@SETTINGS
@hypothesis.given(splits=st.lists(st.sampled_from(["train", "test", "dev", "a", "b"]), min_size=2, max_size=3,
                                  unique=True),
                  classes=st.lists(st.sampled_from(["pos", "neg", "unsup"]), min_size=1, max_size=3, unique=True))
def test_a_root_of_splits_is_never_read_as_classes(splits, classes):
    with folder() as root:
        for split in splits:
            for name in classes:
                (root / split / name).mkdir(parents=True)
                (root / split / name / "0.txt").write_text(f"{split} {name}", encoding="utf-8")
        with pytest.raises(DataError) as error:
            load_texts(root)
        message = one_line(error)
        assert "looks like a dataset split into" in message and "point at one split's folder" in message


@SETTINGS
@hypothesis.given(classes=st.lists(st.sampled_from(["pos", "neg", "meh", "txt"]), min_size=2, max_size=3,
                                   unique=True),
                  lines=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
                                 min_size=1, max_size=4))
def test_class_files_give_every_line_its_file_s_class(classes, lines):
    with folder() as root:
        for name in classes:
            (root / f"reviews.{name}").write_text("\n".join(lines), encoding="utf-8")
        kept = [line.strip() for line in lines if line.strip()]
        if not kept:
            with pytest.raises(DataError) as error:
                load_texts(root)
            assert "no examples" in one_line(error)
            return
        dataset = load_texts(root)
        assert dataset.class_names == tuple(sorted(classes))
        assert dataset.class_counts() == dict.fromkeys(sorted(classes), len(kept))
