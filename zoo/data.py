"""Labeled text from CSV/TSV, JSONL, or a folder layout; splits; tf.data.

Layouts `load_texts` accepts:
- `*.csv` / `*.tsv` with a header row (columns `text` and `label` by default),
- `*.jsonl` / `*.ndjson`, one JSON object per line (same field names),
- a folder of class folders, one example per file (aclImdb's `pos/`, `neg/`),
- a folder of class files, one example per line (rt-polarity's
  `rt-polarity.pos`, `rt-polarity.neg`; the class is the suffix when all
  files share a stem, else the stem).

Labels are class names. Integers 0..N-1 name classes "0".."N-1" (class id =
the integer); other integer labels (`-1`/`1`, star ratings 1..5) are class
names sorted by value; one number written two ways (`1` and `01`) is an error.

Each file's encoding is decided on its own (unless `encoding` is given): a
byte-order mark says UTF-16/32; valid UTF-8 is UTF-8; a file that holds UTF-8
sequences and also bytes invalid in UTF-8 is an error naming the first such
byte (decoding it all as cp1252 would garble every UTF-8 character); a file
with no UTF-8 sequence at all is a legacy 8-bit file, decoded as cp1252, else
Latin-1. The encodings used are recorded.
Only regular files and folders are read (a FIFO would block for ever); a
folder of split folders (aclImdb's `train/`, `test/`) is refused, naming the
split to read. Every problem is reported as one `DataError` line naming file,
line and field; what is skipped (files beside class folders) is logged as a
warning.

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

import codecs
import csv
import dataclasses
import io
import json
import logging
import os
import pathlib
import re
import stat

import numpy as np

DEFAULT_DATASET = "rt-polarity"
# Tried in order for a file with no UTF-8 sequence in it. cp1252 before
# Latin-1: the two differ only in 0x80-0x9f, where cp1252 has the curly quotes
# and dashes that real-world "Latin-1" text (rt-polarity included) actually means.
LEGACY_ENCODINGS = ("cp1252", "latin-1")
# Byte-order marks, longest first (UTF-32's little-endian mark starts with UTF-16's).
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16"))
# One well-formed multi-byte UTF-8 character. Legacy 8-bit text almost never
# forms one by chance (an accented capital followed by a C1 or symbol byte).
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
# Folder names that mark a dataset root split for evaluation (aclImdb's train/ and test/).
_SPLIT_FOLDER_NAMES = frozenset({"train", "training", "test", "testing", "dev", "val", "valid", "validation"})

logger = logging.getLogger(__name__)


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

    def without_texts_of(self, other):
        """This dataset less every example whose text occurs, exactly, in `other`."""
        seen = set(other.texts)
        return self.subset([i for i, text in enumerate(self.texts) if text not in seen])

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
        encoding: force an encoding instead of deciding per file (a recorded
            mix such as "cp1252+utf-8" decides per file again).
        class_names: fix the class order (labels are looked up by name, or
            else integer labels index the names; for multi-label data, the
            label names).
        multi_label: each text has a list of labels (maybe empty), read from
            a CSV/TSV or JSONL file into a multi-hot matrix.
        label_separator: what separates the labels of a CSV/TSV field.

    Example:
    >>> tags = load_texts("tags.csv", label_column="labels", multi_label=True)
    >>> tags.labels.shape, tags.class_names
    ((3, 2), ('JULIET', 'ROMEO'))
    """
    path = _checked_path(pathlib.Path(path) if path is not None else default_dataset_path())
    if multi_label and (path.is_dir() or path.suffix.lower() not in _LIST_READERS):
        raise DataError(f"{path}: multi-label data must be a .csv, .tsv or .jsonl file with a list of labels per text")
    if multi_label and (not isinstance(label_separator, str) or not label_separator.strip()):
        raise DataError(f"label_separator must be a non-blank string, got {label_separator!r}")
    encoding = _explicit_encoding(encoding)
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
    if not any(text.strip() for text, _, _ in records):
        field = "" if path.is_dir() else f" (field {text_column!r})"
        raise DataError(f"{path}: all {len(records)} texts are empty{field}; a classifier needs text to read")
    if multi_label:
        records = [(text, _LIST_READERS[path.suffix.lower()](label, where, label_column, label_separator), where)
                   for text, label, where in records]
        labels, names = _encode_label_lists(records, label_column, class_names)
        if len(names) < 2:
            raise DataError(f"{path}: only {len(names)} label name(s) ({', '.join(map(repr, names))}) found; a "
                            "multi-label classifier needs at least two")
    else:
        field = "class (folder or file name)" if path.is_dir() else f"field {label_column!r}"
        labels, names = _encode_labels(records, field, class_names, typed_ids=not path.is_dir())
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


def _checked_path(path):
    """`path` if it is a regular file or a folder: reading a FIFO or a device would block or never end."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"{path}: {_file_kind(mode)}, not a regular file or folder; give a file or folder of data")
    return path


def _file_kind(mode):
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def _explicit_encoding(encoding):
    """None (decide per file) for a recorded mix such as "cp1252+utf-8": a folder's files were each decided
    on their own, and the same rule decides them again."""
    if encoding is not None and "+" in encoding:
        return None
    return encoding


def _read_text(path, encoding=None):
    """Decode a whole file; return (text, encoding used). See the module docstring for the rule."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if encoding is not None:
        # Python's "utf-8" keeps a byte-order mark as U+FEFF, which would end up in the first column's name.
        named_utf8 = codecs.lookup(encoding).name == "utf-8" if _known(encoding) else False
        return _decode_as(path, data, "utf-8-sig" if named_utf8 else encoding, encoding)
    for mark, marked in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return _decode_as(path, data, marked, marked.removesuffix("-sig"))
    if _looks_like_utf16(data):
        raise DataError(f"{path}: looks like UTF-16 without a byte-order mark (every other byte is 0); pass its "
                        "encoding (encoding=, --encoding utf-16-le or utf-16-be)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        if _UTF8_SEQUENCE.search(data):
            line, column = _position(data, error.start)
            raise DataError(
                f"{path}:{line}: byte 0x{data[error.start]:02x} (column {column}, offset {error.start}) is not "
                f"valid UTF-8, yet the file holds UTF-8 text; fix that line, or pass the whole file's encoding "
                f"(encoding=, --encoding) if it is not UTF-8"
            ) from None
    for candidate in LEGACY_ENCODINGS:
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise AssertionError("Latin-1 decodes every byte")


def _looks_like_utf16(data):
    """ASCII text in UTF-16 is valid UTF-8 with a NUL in every other byte; real text has none."""
    head = data[:200]
    return len(head) >= 8 and any(head[start::2].count(0) == len(head[start::2]) for start in (0, 1))


def _decode_as(path, data, codec, encoding):
    """(text, `encoding`): `data` decoded with `codec`, which is `encoding` or its BOM-dropping twin."""
    try:
        return data.decode(codec), encoding
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        raise DataError(
            f"{path}:{line}: byte 0x{data[error.start]:02x} (column {column}, offset {error.start}) is not valid "
            f"{encoding}; pass the file's encoding (e.g. --encoding cp1252)"
        ) from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}") from None


def _known(encoding):
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def _position(data, offset):
    """1-based (line, column in bytes) of byte `offset`."""
    return data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def _lines(text):
    # split("\n"), not splitlines(): the latter also breaks on U+0085,
    # U+2028 and friends, which are ordinary characters inside a review.
    return [line.rstrip("\r") for line in text.split("\n")]


# csv's default 128 KiB field limit fails long documents with a bare `_csv.Error`.
csv.field_size_limit(2**31 - 1)


def _read_delimited(path, text, text_column, label_column):
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = reader.fieldnames or []
    except csv.Error as error:
        raise DataError(f"{path}:1: {error}") from None
    if not columns:
        raise DataError(f"{path}: empty file; expected a header row with {text_column!r} and {label_column!r}")
    for column in (text_column, label_column):
        if column not in columns:
            raise DataError(
                f"{path}:1: missing column {column!r}; the header has {', '.join(map(repr, columns))}"
            )
        if columns.count(column) > 1:
            # DictReader would keep the last one's values without a word.
            places = [str(index + 1) for index, name in enumerate(columns) if name == column]
            raise DataError(f"{path}:1: column {column!r} appears {len(places)} times in the header (columns "
                            f"{', '.join(places)}); rename all but one")
    records = []
    try:
        for row in reader:
            line = reader.line_num
            if row.get(text_column) is None or row.get(label_column) is None:
                # A quote never closed swallows the rest of the file into one field.
                swallowed = any("\n" in value for value in row.values() if isinstance(value, str))
                hint = "; is a quote left open?" if swallowed else ""
                raise DataError(f"{path}:{line}: row has fewer fields than the header{hint}")
            if None in row:
                # DictReader puts surplus fields under None: an unquoted delimiter
                # in the text would otherwise shift the label and invent a class.
                raise DataError(f"{path}:{line}: row has {len(columns) + len(row[None])} fields but the header has "
                                f"{len(columns)}; quote fields that contain {delimiter!r}")
            records.append((row[text_column], row[label_column], f"{path}:{line}"))
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: {error}") from None
    return records


def _json_line(line, where, fields=()):
    """The JSON value on `line`; an object naming one of `fields` twice is an error (json keeps the last)."""
    repeated = set()

    def object_from_pairs(pairs):
        keys = [key for key, _ in pairs]
        repeated.update(key for key in keys if keys.count(key) > 1)
        return dict(pairs)

    try:
        value = json.loads(line, object_pairs_hook=object_from_pairs)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: invalid JSON ({error.msg})") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply)") from None
    twice = [field for field in fields if field in repeated]
    if twice:
        raise DataError(f"{where}: field {twice[0]!r} appears more than once in the object; keep one")
    return value


def _read_jsonl(path, text, text_column, label_column):
    records = []
    for line_number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        record = _json_line(line, where, (text_column, label_column))
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for field in (text_column, label_column):
            if field not in record:
                raise DataError(f"{where}: missing field {field!r}; the object has {', '.join(map(repr, record))}")
        if not isinstance(record[text_column], str):
            raise DataError(f"{where}: field {text_column!r}: expected a string, got {record[text_column]!r}")
        records.append((record[text_column], record[label_column], where))
    return records


def _visible_entries(folder):
    """`folder`'s entries but hidden ones (`.DS_Store`), sorted; a FIFO or device among them is an error."""
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    for entry in entries:
        _checked_path(entry)
    return entries


def _read_folder(path, encoding):
    entries = _visible_entries(path)
    class_dirs = [entry for entry in entries if entry.is_dir()]
    if class_dirs:
        return _read_class_folders(path, class_dirs, [entry for entry in entries if not entry.is_dir()], encoding)
    if not entries:
        raise DataError(f"{path}: empty folder; expected class folders or one file per class")
    return _read_class_files(path, entries, encoding)


def _read_class_folders(path, class_dirs, other_files, encoding):
    """One example per file, the class is the folder name."""
    _refuse_split_root(path, class_dirs)
    if other_files:
        logger.warning("%s: ignoring %d file(s) beside the class folders (%s); each class is a folder of "
                       "example files", path, len(other_files), ", ".join(file.name for file in other_files[:5])
                       + (", ..." if len(other_files) > 5 else ""))
    records, encodings = [], set()
    for class_dir in class_dirs:
        files = [file for file in sorted(class_dir.rglob("*")) if not file.name.startswith(".")
                 and _checked_path(file).is_file()]
        if not files:
            raise DataError(f"{class_dir}: empty class folder; each class folder needs at least one example file")
        for file in files:
            text, used = _read_text(file, encoding)
            encodings.add(used)
            records.append((text.strip(), class_dir.name, str(file)))
    return records, encodings


def _refuse_split_root(path, class_dirs):
    """aclImdb's root holds `train/` and `test/`, each with `pos/` and `neg/`: read as class folders it
    would train "train" against "test"."""
    subfolders = {folder.name: sorted(entry.name for entry in folder.iterdir()
                                      if entry.is_dir() and not entry.name.startswith("."))
                  for folder in class_dirs}
    nested = [name for name, names in subfolders.items() if names]
    shared = set.intersection(*(set(names) for names in subfolders.values())) if len(class_dirs) > 1 else set()
    if shared or any(name.lower() in _SPLIT_FOLDER_NAMES for name in nested):
        splits = ", ".join(f"{name}/" for name in nested)
        train = next((name for name in nested if name.lower() in ("train", "training")), nested[0])
        raise DataError(
            f"{path}: looks like a dataset split into {splits} (each holding class folders such as "
            f"{', '.join(subfolders[train][:3])}); point at one split's folder, e.g. {path / train}"
        )


def _read_class_files(path, files, encoding):
    """One example per line; the class is the suffix when all files share a stem, else the stem."""
    stems = {file.stem for file in files}
    names = [file.suffix.lstrip(".") if len(stems) == 1 and file.suffix else file.stem for file in files]
    for name in set(names):
        clashing = [file.name for file, other in zip(files, names) if other == name]
        if len(clashing) > 1:
            raise DataError(f"{path}: files {', '.join(clashing)} would all be class {name!r}; a folder of class "
                            "files holds one file per class (rt-polarity.pos, rt-polarity.neg) and nothing else")
    records, encodings = [], set()
    for file, name in zip(files, names):
        text, used = _read_text(file, encoding)
        encodings.add(used)
        examples = [(line.strip(), name, f"{file}:{line_number}")
                    for line_number, line in enumerate(_lines(text), start=1) if line.strip()]
        if not examples:
            raise DataError(f"{file}: no examples; a class file holds one example per line")
        records.extend(examples)
    return records, encodings


# === Labels ===


# Integer labels in their one canonical spelling: ASCII digits, no sign but
# "-", no leading zero.
_CANONICAL_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
# Any spelling `int()` reads as a whole number: "+1", "01", Unicode digits ("١").
_INTEGER = re.compile(r"[+-]?\d+")


def _integer_value(label):
    """The whole number a label spells, else None."""
    return int(label) if _INTEGER.fullmatch(label) else None


def _encode_labels(records, field, class_names, typed_ids=True):
    """int32 class ids and the class names they index.

    `field` names where labels come from in errors ("field 'label'"). A
    name among mostly integer ids is taken for a typo where the ids were typed
    (`typed_ids`), not for folder and file names. Labels are compared as text
    (stripped; JSON integers as written). With
    `class_names`, a label is its name's index, or for integer labels that are
    not names, the id itself. Without, integer labels are sorted by value
    (0..N-1 keep their ids), others alphabetically.
    """
    for (_, label, where) in records:
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise DataError(f"{where}: {field}: expected a class name or integer id, got {label!r}")
        if isinstance(label, str) and not label.strip():
            raise DataError(f"{where}: {field}: empty label")
    labels = [str(label).strip() for _, label, _ in records]
    values = [_integer_value(label) for label in labels]
    numeric = [value is not None for value in values]
    if typed_ids and not all(numeric) and sum(numeric) > len(numeric) // 2:
        _, label, where = records[numeric.index(False)]
        raise DataError(
            f"{where}: {field}: expected an integer class id like the other rows, got {label!r}"
        )
    _refuse_two_spellings(records, labels, values, field)
    if class_names:
        return _encode_with_names(records, labels, values, field, list(class_names))
    if all(numeric):
        names = sorted(set(labels), key=_integer_value)
    else:
        names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    return np.asarray([index[label] for label in labels], dtype=np.int32), names


def _refuse_two_spellings(records, labels, values, field):
    """`1` and `01` (or `+1`, `١`) would be two classes of one number: a typo, almost always."""
    first_spelling = {}
    for (_, _, where), label, value in zip(records, labels, values):
        if value is None:
            continue
        spelling, first_where = first_spelling.setdefault(value, (label, where))
        if label != spelling:
            raise DataError(
                f"{where}: {field}: label {label!r} is the number {value} written differently "
                f"from {spelling!r} at {first_where}; write each class one way"
            )


def _encode_with_names(records, labels, values, field, names):
    index = {name: i for i, name in enumerate(names)}
    if all(label in index for label in labels):
        return np.asarray([index[label] for label in labels], dtype=np.int32), names
    if all(value is not None for value in values):
        for (_, _, where), value in zip(records, values):
            if not 0 <= value < len(names):
                raise DataError(
                    f"{where}: {field}: class id {value} is outside 0..{len(names) - 1} "
                    f"(class names {names})"
                )
        return np.asarray(values, dtype=np.int32), names
    for (_, _, where), label in zip(records, labels):
        if label not in index:
            raise DataError(f"{where}: {field}: unknown class {label!r}; expected one of {names}")
    raise AssertionError("some label is not a class name")


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
    path = _checked_path(pathlib.Path(path) if path is not None else default_data_dir() / DEFAULT_CORPUS)
    encoding = _explicit_encoding(encoding)
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
