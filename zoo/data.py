"""Labeled text from CSV/TSV, JSONL, or a folder layout; splits; tf.data.

Layouts `load_texts` accepts:
- `*.csv` / `*.tsv` with a header row (columns `text` and `label` by default),
- `*.jsonl` / `*.ndjson`, one JSON object per line (same field names),
- a folder of class folders, one example per file (aclImdb's `pos/`, `neg/`),
- a folder of class files, one example per line (rt-polarity's
  `rt-polarity.pos`, `rt-polarity.neg`; the class is the suffix when all
  files share a stem, else the stem).

Labels may be integer class ids or class names. Text files that are not
UTF-8 are decoded as cp1252, then Latin-1, and the encoding used is recorded.
Every problem is reported as one `DataError` line naming file, line and field.

Multi-label data (`multi_label=True`: each text has a set of labels, maybe
none) is a CSV/TSV file whose label column lists the labels with a separator
(`ROMEO|JULIET`; an empty field is a text with no label) or a JSONL file whose
label field is a JSON list of label names (`["ROMEO", "JULIET"]`, or `[]`).
The labels become a multi-hot matrix over the sorted label names.

Example:
>>> dataset = load_texts()            # rt-polarity from ../shared/data
>>> train, validation = dataset.split(validation_fraction=0.1, seed=1337)
>>> batches = train.to_tf_dataset(batch_size=32, shuffle=True)
"""

import csv
import dataclasses
import io
import json
import os
import pathlib

import numpy as np

DEFAULT_DATASET = "rt-polarity"
# Tried in order when no encoding is given. cp1252 before Latin-1: the two
# differ only in 0x80-0x9f, where cp1252 has the curly quotes and dashes that
# real-world "Latin-1" text (rt-polarity included) actually means.
FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")


class DataError(ValueError):
    """A problem with input data, stated in one line with its location."""


def default_data_dir():
    """`$ZOO_DATA_DIR`, else the first `../shared/data` found from here or the repo."""
    if os.environ.get("ZOO_DATA_DIR"):
        return pathlib.Path(os.environ["ZOO_DATA_DIR"])
    candidates = [pathlib.Path.cwd() / ".." / "shared" / "data"]
    candidates.append(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return candidates[0]


def default_dataset_path():
    return default_data_dir() / DEFAULT_DATASET


# The default separator of label lists in CSV/TSV fields: commas and tabs
# delimit the fields themselves (a comma would force quoting every list),
# semicolons are the field delimiter of CSV exports in decimal-comma locales,
# label names contain spaces ("KING RICHARD III"), and "|" is what existing
# multi-label CSVs use (MovieLens's "Adventure|Comedy" genres).
LABEL_SEPARATOR = "|"


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """Texts with their labels and the class names those labels index.

    `labels` is `[n]` int32 class ids, or for multi-label data (`multi_label`)
    an `[n, num_classes]` int32 multi-hot matrix.
    """

    texts: tuple
    labels: np.ndarray
    class_names: tuple
    source: str
    encoding: str

    def __len__(self):
        return len(self.texts)

    @property
    def multi_label(self):
        return self.labels.ndim == 2

    def class_counts(self):
        """Texts per class (per label, for multi-label data)."""
        if self.multi_label:
            counts = self.labels.sum(axis=0)
        else:
            counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))

    def subset(self, indices):
        return dataclasses.replace(
            self,
            texts=tuple(self.texts[i] for i in indices),
            labels=self.labels[np.asarray(indices, dtype=np.int64)],
        )

    def split(self, validation_fraction=0.1, seed=1337):
        """Deterministic shuffled split into (train, validation)."""
        if not 0 < validation_fraction < 1:
            raise DataError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        num_validation = max(1, int(round(len(self) * validation_fraction)))
        if num_validation >= len(self):
            raise DataError(f"{self.source}: {len(self)} examples are too few to split")
        return self.subset(order[num_validation:]), self.subset(order[:num_validation])

    def to_tf_dataset(self, batch_size=32, shuffle=False, seed=1337):
        """Batched, prefetched `tf.data.Dataset` of (string, int32 label or multi-hot row)."""
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(
            (tf.constant(self.texts, dtype=tf.string), self.labels.astype(np.int32))
        )
        if shuffle:
            dataset = dataset.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_texts(
    path=None, *, text_column="text", label_column="label", encoding=None, class_names=None, multi_label=False,
    label_separator=LABEL_SEPARATOR,
):
    """Load a labeled text dataset (see the module docstring for layouts).

    Args:
        path: file or folder; None loads rt-polarity from the shared data dir.
        text_column, label_column: field names for CSV/TSV/JSONL.
        encoding: force an encoding instead of trying utf-8, cp1252, Latin-1.
        class_names: fix the class order (names for string labels, or names
            given to integer ids 0..n-1; for multi-label data, the label names).
        multi_label: each text has a list of labels (maybe empty), read from
            a CSV/TSV or JSONL file into a multi-hot matrix.
        label_separator: what separates the labels of a CSV/TSV field.

    Example:
    >>> tags = load_texts("tags.csv", label_column="labels", multi_label=True)
    >>> tags.labels.shape, tags.class_names
    ((3, 2), ('JULIET', 'ROMEO'))
    """
    path = pathlib.Path(path) if path is not None else default_dataset_path()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if multi_label and (path.is_dir() or path.suffix.lower() not in _LIST_READERS):
        raise DataError(f"{path}: multi-label data must be a .csv, .tsv or .jsonl file with a list of labels per text")
    if multi_label and (not isinstance(label_separator, str) or not label_separator.strip()):
        raise DataError(f"label_separator must be a non-blank string, got {label_separator!r}")
    if path.is_dir():
        records, encodings = _read_folder(path, encoding)
    else:
        suffix = path.suffix.lower()
        readers = {".csv": _read_delimited, ".tsv": _read_delimited, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl}
        if suffix not in readers:
            raise DataError(
                f"{path}: unsupported file type {suffix or '(none)'!r}; expected .csv, .tsv, .jsonl or a folder"
            )
        text, used = _read_text(path, encoding)
        records = readers[suffix](path, text, text_column, label_column)
        encodings = {used}
    if not records:
        raise DataError(f"{path}: no examples found")
    if multi_label:
        records = [(text, _LIST_READERS[path.suffix.lower()](label, where, label_column, label_separator), where)
                   for text, label, where in records]
        labels, names = _encode_label_lists(records, label_column, class_names)
        if len(names) < 2:
            raise DataError(f"{path}: only {len(names)} label name(s) ({', '.join(map(repr, names))}) found; a "
                            "multi-label classifier needs at least two")
    else:
        labels, names = _encode_labels(records, label_column, class_names)
    if not multi_label and len(set(labels.tolist())) < 2:
        raise DataError(
            f"{path}: only one class ({names[labels[0]]!r}) found; a classifier needs at least two"
        )
    return TextDataset(
        texts=tuple(record[0] for record in records),
        labels=labels,
        class_names=tuple(names),
        # Absolute: a report names the data so that it can be read again from any folder (zoo export).
        source=str(path.resolve()),
        encoding="+".join(sorted(encodings)),
    )


# === Reading ===


def _read_text(path, encoding=None):
    """Decode a whole file; return (text, encoding used)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if encoding is None:
        for candidate in FALLBACK_ENCODINGS:
            try:
                # utf-8-sig also drops a byte-order mark if there is one.
                return data.decode("utf-8-sig" if candidate == "utf-8" else candidate), candidate
            except UnicodeDecodeError:
                continue
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:
        _raise_decode(path, data, encoding)
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}") from None


def _raise_decode(path, data, encoding):
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise DataError(
            f"{path}:{line}: byte 0x{byte:02x} is not valid {encoding}; pass the file's encoding (e.g. --encoding cp1252)"
        ) from None


def _lines(text):
    # split("\n"), not splitlines(): the latter also breaks on U+0085,
    # U+2028 and friends, which are ordinary characters inside a review.
    return [line.rstrip("\r") for line in text.split("\n")]


# csv's default 128 KiB field limit fails long documents with a bare `_csv.Error`.
csv.field_size_limit(2**31 - 1)


def _read_delimited(path, text, text_column, label_column):
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    if not columns:
        raise DataError(f"{path}: empty file; expected a header row with {text_column!r} and {label_column!r}")
    for column in (text_column, label_column):
        if column not in columns:
            raise DataError(
                f"{path}:1: missing column {column!r}; the header has {', '.join(map(repr, columns))}"
            )
    records = []
    try:
        for row in reader:
            line = reader.line_num
            if row.get(text_column) is None or row.get(label_column) is None:
                raise DataError(f"{path}:{line}: row has fewer fields than the header")
            if None in row:
                # DictReader puts surplus fields under None: an unquoted delimiter
                # in the text would otherwise shift the label and invent a class.
                raise DataError(f"{path}:{line}: row has {len(columns) + len(row[None])} fields but the header has "
                                f"{len(columns)}; quote fields that contain {delimiter!r}")
            records.append((row[text_column], row[label_column], f"{path}:{line}"))
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: {error}") from None
    return records


def _json_line(line, where):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: invalid JSON ({error.msg})") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply)") from None


def _read_jsonl(path, text, text_column, label_column):
    records = []
    for line_number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        record = _json_line(line, where)
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for field in (text_column, label_column):
            if field not in record:
                raise DataError(f"{where}: missing field {field!r}; the object has {', '.join(map(repr, record))}")
        if not isinstance(record[text_column], str):
            raise DataError(f"{where}: field {text_column!r}: expected a string, got {record[text_column]!r}")
        records.append((record[text_column], record[label_column], where))
    return records


def _read_folder(path, encoding):
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    class_dirs = [p for p in entries if p.is_dir()]
    records, encodings = [], set()
    if class_dirs:
        # One example per file, the class is the folder name.
        for class_dir in class_dirs:
            for file in sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
                text, used = _read_text(file, encoding)
                encodings.add(used)
                records.append((text.strip(), class_dir.name, str(file)))
        return records, encodings
    files = [p for p in entries if p.is_file()]
    if not files:
        raise DataError(f"{path}: empty folder; expected class folders or one file per class")
    stems = {file.stem for file in files}
    for file in files:
        name = file.suffix.lstrip(".") if len(stems) == 1 and file.suffix else file.stem
        text, used = _read_text(file, encoding)
        encodings.add(used)
        for line_number, line in enumerate(_lines(text), start=1):
            if line.strip():
                records.append((line.strip(), name, f"{file}:{line_number}"))
    return records, encodings


# === Labels ===


def _as_class_id(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _encode_labels(records, label_column, class_names):
    raw = [label for _, label, _ in records]
    for (_, label, where) in records:
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise DataError(f"{where}: field {label_column!r}: expected a class name or integer id, got {label!r}")
        if isinstance(label, str) and not label.strip():
            raise DataError(f"{where}: field {label_column!r}: empty label")
    ids = [_as_class_id(label) for label in raw]
    numeric = [i is not None for i in ids]
    if all(numeric):
        num_classes = max(ids) + 1
        used = sorted(set(ids))
        if not class_names and used != list(range(num_classes)):
            # Ids 3 and 7 would make 8 classes, six of them never seen.
            missing = sorted(set(range(num_classes)) - set(used))
            where = records[ids.index(num_classes - 1)][2]
            raise DataError(
                f"{where}: field {label_column!r}: class id {num_classes - 1}, but ids {missing[:10]} never occur; "
                f"integer labels must be 0..N-1, each used (write class names instead, or pass class_names)"
            )
        names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        for (_, label, where), class_id in zip(records, ids):
            if not 0 <= class_id < len(names):
                raise DataError(
                    f"{where}: field {label_column!r}: class id {class_id} is outside 0..{len(names) - 1}"
                )
        return np.asarray(ids, dtype=np.int32), names
    if any(numeric) and sum(numeric) > len(numeric) // 2:
        _, label, where = records[numeric.index(False)]
        raise DataError(
            f"{where}: field {label_column!r}: expected an integer class id like the other rows, got {label!r}"
        )
    labels = [str(label).strip() for label in raw]
    names = list(class_names) if class_names else sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    for (_, _, where), label in zip(records, labels):
        if label not in index:
            raise DataError(f"{where}: field {label_column!r}: unknown class {label!r}; expected one of {names}")
    return np.asarray([index[label] for label in labels], dtype=np.int32), names


def _split_label_field(value, where, label_column, separator):
    """A CSV/TSV label field as a list of names: `"a|b"` -> `["a", "b"]`, blank -> `[]`."""
    if not value.strip():
        return []
    names = [name.strip() for name in value.split(separator)]
    if not all(names):
        raise DataError(f"{where}: field {label_column!r}: empty label name in {value!r} (labels are separated "
                        f"by {separator!r})")
    return names


def _json_label_list(value, where, label_column, separator):
    if not isinstance(value, list) or not all(isinstance(name, str) and name.strip() for name in value):
        raise DataError(f"{where}: field {label_column!r}: expected a JSON list of label names such as "
                        f"[\"a\", \"b\"] (or [] for none), got {json.dumps(value)[:80]}")
    return [name.strip() for name in value]


_LIST_READERS = {".csv": _split_label_field, ".tsv": _split_label_field, ".jsonl": _json_label_list,
                 ".ndjson": _json_label_list}


def _encode_label_lists(records, label_column, class_names):
    """Multi-hot int32 `[n, num_labels]` over `class_names` (default: every name seen, sorted)."""
    names = list(class_names) if class_names else sorted({name for _, label, _ in records for name in label})
    index = {name: i for i, name in enumerate(names)}
    labels = np.zeros((len(records), len(names)), dtype=np.int32)
    for row, (_, label, where) in enumerate(records):
        for name in label:
            if name not in index:
                raise DataError(f"{where}: field {label_column!r}: unknown label {name!r}; expected some of {names}")
            labels[row, index[name]] = 1
    return labels, names


# === Unlabeled corpora (language modeling) ===

DEFAULT_CORPUS = pathlib.Path("tinyshakespeare") / "input.txt"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Documents of raw text for language modeling."""

    documents: tuple
    source: str
    encoding: str

    def __len__(self):
        return len(self.documents)

    @property
    def num_characters(self):
        return sum(map(len, self.documents))

    def split(self, validation_fraction=0.1, seed=1337):
        """Deterministic `(train, validation)` corpora.

        Several documents are shuffled and split by document. A single
        document (tinyshakespeare) is split by position: the last
        `validation_fraction` of its lines, so no line is in both.
        """
        if not 0 < validation_fraction < 1:
            raise DataError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        if len(self.documents) > 1:
            order = np.random.default_rng(seed).permutation(len(self.documents))
            num_validation = max(1, int(round(len(self.documents) * validation_fraction)))
            pick = lambda indices: tuple(self.documents[i] for i in sorted(indices))  # noqa: E731
            return (
                dataclasses.replace(self, documents=pick(order[num_validation:])),
                dataclasses.replace(self, documents=pick(order[:num_validation])),
            )
        lines = self.documents[0].split("\n")
        cut = len(lines) - max(1, int(round(len(lines) * validation_fraction)))
        if cut < 1:
            raise DataError(f"{self.source}: too little text to split off a validation part")
        return (
            dataclasses.replace(self, documents=("\n".join(lines[:cut]),)),
            dataclasses.replace(self, documents=("\n".join(lines[cut:]),)),
        )


def load_corpus(path=None, *, text_column="text", encoding=None):
    """Load raw text: a `.txt` file (one document), a `.jsonl` file (one
    document per object, field `text_column`), or a folder of `.txt` files.
    None loads tinyshakespeare from the shared data dir.
    """
    path = pathlib.Path(path) if path is not None else default_data_dir() / DEFAULT_CORPUS
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: no .txt files in the folder")
        decoded = [_read_text(file, encoding) for file in files]
        documents = [text for text, _ in decoded]
        encodings = {used for _, used in decoded}
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        text, used = _read_text(path, encoding)
        documents, encodings = [], {used}
        for line_number, line in enumerate(_lines(text), start=1):
            if not line.strip():
                continue
            record = _json_line(line, f"{path}:{line_number}")
            if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
                raise DataError(f"{path}:{line_number}: field {text_column!r}: expected an object with a string")
            documents.append(record[text_column])
    else:
        text, used = _read_text(path, encoding)
        documents, encodings = [text], {used}
    documents = [document for document in documents if document.strip()]
    if not documents:
        raise DataError(f"{path}: no text found")
    return Corpus(tuple(documents), str(path.resolve()), "+".join(sorted(encodings)))
