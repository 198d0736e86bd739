"""TFLite model metadata in zoo's text-classifier LiteRT files, for MediaPipe Tasks' TextClassifier.

MediaPipe's `TextClassifier` runs a model with an int32 `[1, L]` token-id input
only when the file carries TFLite model metadata (the TFLite Support /
MediaPipe schema, `mediapipe/tasks/metadata/metadata_schema.fbs`, file
identifier "M001"): a regex tokenizer process unit on the input tensor, with
its vocabulary file, and a label file on the output tensor. This module
writes that metadata into zoo's converted flatbuffer; the file still runs
unchanged in `ai_edge_litert` (`zoo.runtime.TextClassifierRunner`).

How (the layout MediaPipe's own `MetadataPopulator` produces):
- the metadata flatbuffer goes into a new model buffer named by a
  `Model.metadata` entry "TFLITE_METADATA";
- the associated files (`vocab.txt`, `labels.txt`) follow the flatbuffer as
  an uncompressed (STORED) zip archive, which MediaPipe's metadata extractor
  finds from the end of the file.

Route: MediaPipe 1.2.3's `metadata_writers` and `MetadataPopulator` do not
import (their `_pywrap_metadata_version` extension is not in the wheel), and
the populator re-packs the whole model with the TF 2.21 schema's object API,
which drops the 16-byte alignment of weight buffers and any field newer
than that schema. Here the metadata is built with the `flatbuffers` builder
(table slots from `metadata_schema.fbs`), and the model is extended without
re-packing: a new root `Model` table is written in front of the original
bytes, pointing at the original subgraphs, operator codes and buffers, with
the buffers and metadata vectors extended by one entry. Every original
byte stays where it was relative to a 16-byte boundary, so the file's
tensors, ops and signatures are the converter's, byte for byte. Needs only
`flatbuffers` (no TensorFlow, no MediaPipe).

`min_parser_version` is computed exactly as the metadata library does it
(`mediapipe/tasks/cc/metadata/metadata_version.cc`, a port below): the
newest schema member present. For these files that is
`RegexTokenizerOptions`, added in metadata schema 1.2.1, so "1.2.1" (the
value in MediaPipe's own regex text-classifier golden metadata,
`mediapipe/tasks/testdata/metadata/movie_review.json`).

MediaPipe's regex tokenizer does not lowercase, and drops every delimiter
match: its ids are zoo's only when the tokenizer's rules can be written as
one delimiter regex (`zoo.preprocessing.reference.mediapipe_exact`); else
the vocabulary still loads and the ids differ on affected text.

Example:
>>> flatbuffer = add_text_classifier_metadata(
...     open("model.tflite", "rb").read(), name="lstm_classifier", version="1",
...     description="...", vocabulary=["[PAD]", "[UNK]", "good"], labels=["neg", "pos"],
...     delimiter_pattern=ASCII_WHITESPACE_AND_PUNCTUATION)
>>> read_metadata(flatbuffer)["min_parser_version"]
'1.2.1'
"""

import io
import re
import struct
import zipfile

import flatbuffers

METADATA_NAME = "TFLITE_METADATA"
MODEL_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"
VOCABULARY_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
INPUT_NAME = "token_ids"
OUTPUT_NAME = "probabilities"
# Runs of ASCII whitespace and ASCII punctuation (RE2 syntax, as MediaPipe reads it).
ASCII_WHITESPACE_AND_PUNCTUATION = r"[ \t\n\x0b\x0c\r!-/:-@\[-`{-~]+"

# MediaPipe's regex tokenizer looks these up by name (regex_tokenizer.cc).
MEDIAPIPE_PAD = "<PAD>"
MEDIAPIPE_UNKNOWN = "<UNKNOWN>"
MEDIAPIPE_START = "<START>"  # prepended to every input when present: zoo has none
ZOO_SPECIALS = ("[PAD]", "[UNK]")

_VOCABULARY_DESCRIPTION = "Vocabulary file to convert natural language words to embedding vectors."
_LABELS_DESCRIPTION = "Labels for categories that the model can recognize."

# --- metadata_schema.fbs: enum values and table slots -----------------------
_FILE_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_FILE_VOCABULARY = 5
_FILE_SCANN_INDEX_FILE = 6
_CONTENT_FEATURE = 1  # ContentProperties union: FeatureProperties
_CONTENT_AUDIO = 4
_UNIT_BERT = 4  # ProcessUnitOptions union
_UNIT_SENTENCE_PIECE = 5
_UNIT_REGEX = 6

# AssociatedFile {name, description, type, locale, version}
_AF_NAME, _AF_DESCRIPTION, _AF_TYPE, _AF_LOCALE, _AF_VERSION = range(5)
# Content {content_properties_type, content_properties, range}
_CONTENT_TYPE, _CONTENT_PROPERTIES = 0, 1
# ProcessUnit {options_type, options}; RegexTokenizerOptions {delim_regex_pattern, vocab_file}
_UNIT_TYPE, _UNIT_OPTIONS = 0, 1
_REGEX_PATTERN, _REGEX_VOCABULARY = 0, 1
# Stats {max, min}
_STATS_MAX, _STATS_MIN = 0, 1
# TensorMetadata {name, description, dimension_names, content, process_units, stats, associated_files}
_TM_NAME, _TM_DESCRIPTION, _TM_DIMENSION_NAMES, _TM_CONTENT, _TM_UNITS, _TM_STATS, _TM_FILES = range(7)
# SubGraphMetadata {name, description, input_tensor_metadata, output_tensor_metadata,
#   associated_files, input_process_units, output_process_units, input_tensor_groups,
#   output_tensor_groups, custom_metadata}
(_SG_NAME, _SG_DESCRIPTION, _SG_INPUTS, _SG_OUTPUTS, _SG_FILES, _SG_INPUT_UNITS, _SG_OUTPUT_UNITS,
 _SG_INPUT_GROUPS, _SG_OUTPUT_GROUPS, _SG_CUSTOM) = range(10)
# ModelMetadata {name, description, version, subgraph_metadata, author, license,
#   associated_files, min_parser_version}
(_MM_NAME, _MM_DESCRIPTION, _MM_VERSION, _MM_SUBGRAPHS, _MM_AUTHOR, _MM_LICENSE, _MM_FILES,
 _MM_MIN_PARSER_VERSION) = range(8)

# --- schema.fbs (TFLite model) -----------------------------------------------
# Model {version, operator_codes, subgraphs, description, buffers, metadata_buffer,
#   metadata, signature_defs, external_buffer_groups, external_buffers}: slot 0 is a
#   uint32, every other one an offset. A slot past these (a newer schema) is refused.
_MODEL_VERSION, _MODEL_SUBGRAPHS, _MODEL_BUFFERS, _MODEL_METADATA = 0, 2, 4, 6
_MODEL_SLOTS = 10
_BUFFER_DATA, _BUFFER_OFFSET = 0, 1  # Buffer {data, offset, size}
_METADATA_ENTRY_NAME, _METADATA_ENTRY_BUFFER = 0, 1  # Metadata {name, buffer}
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 0, 1, 2
_TENSOR_SHAPE, _TENSOR_TYPE = 0, 1
_TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8"}

# metadata_version.cc: the schema version that added each member.
_MEMBER_VERSIONS = {
    "AssociatedFileType.VOCABULARY": (1, 0, 1),
    "SubGraphMetadata.input_process_units": (1, 1, 0),
    "SubGraphMetadata.output_process_units": (1, 1, 0),
    "ProcessUnitOptions.BertTokenizerOptions": (1, 1, 0),
    "ProcessUnitOptions.SentencePieceTokenizerOptions": (1, 1, 0),
    "SubGraphMetadata.input_tensor_groups": (1, 2, 0),
    "SubGraphMetadata.output_tensor_groups": (1, 2, 0),
    "ProcessUnitOptions.RegexTokenizerOptions": (1, 2, 1),
    "ContentProperties.AudioProperties": (1, 3, 0),
    "AssociatedFileType.SCANN_INDEX_FILE": (1, 4, 0),
    "AssociatedFile.version": (1, 4, 1),
    "SubGraphMetadata.custom_metadata": (1, 5, 0),
}


def add_text_classifier_metadata(flatbuffer, *, name, version, description, vocabulary, labels,
                                 delimiter_pattern, author="zoo"):
    """`flatbuffer` with MediaPipe TextClassifier metadata and its vocab/label files; returns bytes.

    Args:
        flatbuffer: a converted text-classifier file: int32 `[1, L]` token ids in,
            float32 `[1, len(labels)]` scores out, no metadata yet.
        name, version, description, author: the model's general metadata.
        vocabulary: zoo's vocabulary, index = token id: `"[PAD]"`, `"[UNK]"`,
            then the words. Written as MediaPipe's `vocab.txt`: `<PAD> 0`,
            `<UNKNOWN> 1`, then one `word id` line per word. That format splits
            lines on "\\n" and fields on " ", so a word containing either cannot
            be written (ValueError; zoo's words never hold ASCII whitespace).
        labels: one class name per output column (`labels.txt`, TENSOR_AXIS_LABELS).
        delimiter_pattern: the RE2 regex MediaPipe splits text on (matches are
            dropped), e.g. `ASCII_WHITESPACE_AND_PUNCTUATION`.
    """
    model_bytes = bytes(flatbuffer)
    labels = [str(label) for label in labels]
    _check_classifier_model(model_bytes, len(labels))
    files = {VOCABULARY_FILE: vocabulary_file(vocabulary), LABELS_FILE: labels_file(labels)}
    _check_delimiter_pattern(delimiter_pattern)
    fields = dict(name=name, version=version, description=description, author=author,
                  delimiter_pattern=delimiter_pattern)
    # As MetadataPopulator: build, compute the minimum parser version from the
    # buffer, then write it into the metadata.
    metadata = _classifier_metadata(**fields, min_parser_version=None)
    metadata = _classifier_metadata(**fields, min_parser_version=minimum_parser_version(metadata))
    return _append_files(_with_metadata_buffer(model_bytes, metadata), files)


def vocabulary_file(vocabulary):
    """MediaPipe's regex-tokenizer vocabulary (`token id` lines, UTF-8) for zoo's vocabulary."""
    vocabulary = list(vocabulary)
    if tuple(vocabulary[:2]) != ZOO_SPECIALS:
        raise ValueError(f"vocabulary must start with {list(ZOO_SPECIALS)}, got {vocabulary[:2]!r}")
    lines = [f"{MEDIAPIPE_PAD} 0", f"{MEDIAPIPE_UNKNOWN} 1"]
    seen = {MEDIAPIPE_PAD, MEDIAPIPE_UNKNOWN, MEDIAPIPE_START}
    for token_id, word in enumerate(vocabulary[2:], start=2):
        if not isinstance(word, str) or not word or " " in word or "\n" in word:
            # vocab_utils.cc: each non-empty line is split on ' ' and the
            # second field read with std::stoi: a space in a word makes it
            # throw, a newline makes two lines.
            raise ValueError(f"vocabulary word {token_id} {word!r} cannot be written to MediaPipe's vocabulary "
                             "file: it is empty or holds a space or a newline")
        if word in seen:
            # The tokenizer's map keeps the last line for a word; <START>
            # would be prepended to every input.
            raise ValueError(f"vocabulary word {token_id} {word!r} is repeated or is one of MediaPipe's special "
                             f"tokens {MEDIAPIPE_PAD}, {MEDIAPIPE_UNKNOWN}, {MEDIAPIPE_START}")
        seen.add(word)
        lines.append(f"{word} {token_id}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def labels_file(labels):
    """One label per line (MediaPipe reads `labels.txt` split on newlines; an empty label is an error)."""
    for index, label in enumerate(labels):
        if not label or "\n" in label or "\r" in label:
            raise ValueError(f"label {index} {label!r} is empty or holds a line break")
    return ("\n".join(labels) + "\n").encode("utf-8")


def read_metadata(flatbuffer):
    """The file's TFLite metadata as a dict (ValueError if it has none).

    Keys: name, version, description, author, min_parser_version,
    associated_files (names recorded in the metadata, in order),
    packed_files (names in the appended zip), delimiter_pattern.
    """
    metadata = metadata_buffer(flatbuffer)
    if metadata is None:
        raise ValueError("the file carries no TFLite metadata (no 'TFLITE_METADATA' entry)")
    root = _root(metadata, METADATA_IDENTIFIER, "TFLite metadata")
    recorded, patterns = [], []
    for table in _associated_file_tables(root):
        recorded.append(table.string(_AF_NAME))
    for subgraph in root.tables(_MM_SUBGRAPHS):
        for tensor in subgraph.tables(_SG_INPUTS):
            for unit in tensor.tables(_TM_UNITS):
                if unit.scalar(_UNIT_TYPE, "<B") == _UNIT_REGEX:
                    patterns.append(unit.table(_UNIT_OPTIONS).string(_REGEX_PATTERN))
    return {
        "name": root.string(_MM_NAME),
        "version": root.string(_MM_VERSION),
        "description": root.string(_MM_DESCRIPTION),
        "author": root.string(_MM_AUTHOR),
        "min_parser_version": root.string(_MM_MIN_PARSER_VERSION),
        "associated_files": recorded,
        "packed_files": packed_files(flatbuffer),
        "delimiter_pattern": patterns[0] if patterns else None,
    }


def metadata_buffer(flatbuffer):
    """The raw metadata flatbuffer of a TFLite file, or None."""
    flatbuffer = bytes(flatbuffer)
    model = _root(flatbuffer, MODEL_IDENTIFIER, "TFLite model")
    buffers = model.tables(_MODEL_BUFFERS)
    for entry in model.tables(_MODEL_METADATA):
        if entry.string(_METADATA_ENTRY_NAME) == METADATA_NAME:
            data = buffers[entry.scalar(_METADATA_ENTRY_BUFFER, "<I")].bytes(_BUFFER_DATA)
            if data:
                return data
    return None


def packed_files(flatbuffer):
    """Names of the associated files zipped after the flatbuffer ([] if none)."""
    stream = io.BytesIO(bytes(flatbuffer))
    if not zipfile.is_zipfile(stream):
        return []
    with zipfile.ZipFile(stream) as archive:
        return archive.namelist()


def read_associated_file(flatbuffer, name):
    """The bytes of one associated file (e.g. `vocab.txt`)."""
    with zipfile.ZipFile(io.BytesIO(bytes(flatbuffer))) as archive:
        return archive.read(name)


def minimum_parser_version(metadata):
    """The oldest metadata parser that understands every field in `metadata` (metadata_version.cc).

    Starts at "1.0.0" and takes the newest schema member present; like the
    C++, it looks at files and process units on tensors, subgraphs and the
    model, not inside tokenizer options.
    """
    root = _root(bytes(metadata), METADATA_IDENTIFIER, "TFLite metadata")
    found = [(1, 0, 0)]

    def files(table, slot):
        for file in table.tables(slot):
            kind = file.scalar(_AF_TYPE, "<b")
            if kind == _FILE_VOCABULARY:
                found.append(_MEMBER_VERSIONS["AssociatedFileType.VOCABULARY"])
            if kind == _FILE_SCANN_INDEX_FILE:
                found.append(_MEMBER_VERSIONS["AssociatedFileType.SCANN_INDEX_FILE"])
            if file.has(_AF_VERSION):
                found.append(_MEMBER_VERSIONS["AssociatedFile.version"])

    def units(table, slot):
        for unit in table.tables(slot):
            kind = unit.scalar(_UNIT_TYPE, "<B")
            for option, member in ((_UNIT_BERT, "BertTokenizerOptions"),
                                   (_UNIT_SENTENCE_PIECE, "SentencePieceTokenizerOptions"),
                                   (_UNIT_REGEX, "RegexTokenizerOptions")):
                if kind == option:
                    found.append(_MEMBER_VERSIONS[f"ProcessUnitOptions.{member}"])

    for subgraph in root.tables(_MM_SUBGRAPHS):
        for tensor in subgraph.tables(_SG_INPUTS) + subgraph.tables(_SG_OUTPUTS):
            files(tensor, _TM_FILES)
            units(tensor, _TM_UNITS)
            content = tensor.table(_TM_CONTENT)
            if content is not None and content.scalar(_CONTENT_TYPE, "<B") == _CONTENT_AUDIO:
                found.append(_MEMBER_VERSIONS["ContentProperties.AudioProperties"])
        files(subgraph, _SG_FILES)
        for slot, member in ((_SG_INPUT_UNITS, "input_process_units"), (_SG_OUTPUT_UNITS, "output_process_units")):
            if subgraph.has(slot):
                found.append(_MEMBER_VERSIONS[f"SubGraphMetadata.{member}"])
                units(subgraph, slot)
        for slot, member in ((_SG_INPUT_GROUPS, "input_tensor_groups"), (_SG_OUTPUT_GROUPS, "output_tensor_groups"),
                             (_SG_CUSTOM, "custom_metadata")):
            if subgraph.has(slot):
                found.append(_MEMBER_VERSIONS[f"SubGraphMetadata.{member}"])
    files(root, _MM_FILES)
    return ".".join(str(part) for part in max(found))


# === Writing =================================================================


def _classifier_metadata(*, name, version, description, author, delimiter_pattern, min_parser_version):
    """The ModelMetadata flatbuffer (what MediaPipe's `create_for_regex_model` writes, with zoo's names)."""
    builder = flatbuffers.Builder(1024)

    def string(value):
        return None if value is None else builder.CreateString(str(value))

    def table(slot_count, offsets=(), bytes_=()):
        builder.StartObject(slot_count)
        for slot, value in offsets:
            if value is not None:
                builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        for slot, value, signed in bytes_:
            (builder.PrependInt8Slot if signed else builder.PrependUint8Slot)(slot, value, 0)
        return builder.EndObject()

    def associated_file(file_name, file_description, kind):
        names = string(file_name), string(file_description)
        return table(5, [(_AF_NAME, names[0]), (_AF_DESCRIPTION, names[1])], [(_AF_TYPE, kind, True)])

    def feature_content():
        properties = table(0)
        return table(3, [(_CONTENT_PROPERTIES, properties)], [(_CONTENT_TYPE, _CONTENT_FEATURE, False)])

    def floats(values):
        builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            builder.PrependFloat32(value)
        return builder.EndVector()

    # Input: token ids, produced by the regex tokenizer.
    vocabulary = _offsets(builder, [associated_file(VOCABULARY_FILE, _VOCABULARY_DESCRIPTION, _FILE_VOCABULARY)])
    pattern = string(delimiter_pattern)
    regex = table(2, [(_REGEX_PATTERN, pattern), (_REGEX_VOCABULARY, vocabulary)])
    tokenizer = table(2, [(_UNIT_OPTIONS, regex)], [(_UNIT_TYPE, _UNIT_REGEX, False)])
    units = _offsets(builder, [tokenizer])
    content, stats = feature_content(), table(2)
    input_name, input_description = string(INPUT_NAME), string("Token ids of the input text (regex tokenizer).")
    input_tensor = table(7, [(_TM_NAME, input_name), (_TM_DESCRIPTION, input_description), (_TM_CONTENT, content),
                             (_TM_UNITS, units), (_TM_STATS, stats)])
    # Output: class probabilities, one label per column.
    label_files = _offsets(builder, [associated_file(LABELS_FILE, _LABELS_DESCRIPTION, _FILE_TENSOR_AXIS_LABELS)])
    content = feature_content()
    maximum, minimum = floats([1.0]), floats([0.0])
    stats = table(2, [(_STATS_MAX, maximum), (_STATS_MIN, minimum)])
    output_name, output_description = string(OUTPUT_NAME), string("Probability of each class (softmax).")
    output_tensor = table(7, [(_TM_NAME, output_name), (_TM_DESCRIPTION, output_description), (_TM_CONTENT, content),
                              (_TM_STATS, stats), (_TM_FILES, label_files)])
    inputs, outputs = _offsets(builder, [input_tensor]), _offsets(builder, [output_tensor])
    subgraph = table(10, [(_SG_INPUTS, inputs), (_SG_OUTPUTS, outputs)])
    subgraphs = _offsets(builder, [subgraph])
    general = [(_MM_NAME, string(name)), (_MM_DESCRIPTION, string(description)), (_MM_VERSION, string(version)),
               (_MM_AUTHOR, string(author)), (_MM_MIN_PARSER_VERSION, string(min_parser_version))]
    root = table(8, general + [(_MM_SUBGRAPHS, subgraphs)])
    builder.Finish(root, METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _offsets(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _with_metadata_buffer(model_bytes, metadata):
    """The model with `metadata` in a new buffer named "TFLITE_METADATA"; original bytes kept as they are.

    flatbuffers offsets point forward, so a new root `Model` table placed in
    front of the original bytes can point at the original subgraphs, buffers
    and strings. The builder writes back to front: the original bytes first
    (they end up last), 16-byte aligned, and the whole file a multiple of 16,
    so each original byte keeps its offset modulo 16 (weight buffers are
    `force_align: 16`).
    """
    model = _root(model_bytes, MODEL_IDENTIFIER, "TFLite model")
    unknown = [slot for slot in range(_MODEL_SLOTS, model.slot_count()) if model.has(slot)]
    if unknown:
        raise ValueError(f"the model has Model fields {unknown} newer than the schema this module knows")
    buffers = model.targets(_MODEL_BUFFERS)
    entries = model.targets(_MODEL_METADATA)
    if any(_Table(model_bytes, p).scalar(_BUFFER_OFFSET, "<Q") > 1 for p in buffers):
        # Such buffers are addressed from the start of the file, which moves.
        raise ValueError("the model keeps buffer data outside the flatbuffer (Buffer.offset); not supported")
    if any(_Table(model_bytes, p).string(_METADATA_ENTRY_NAME) == METADATA_NAME for p in entries):
        raise ValueError("the model already carries TFLite metadata; pass the converter's output")
    if zipfile.is_zipfile(io.BytesIO(model_bytes)):
        raise ValueError("the model already has files appended (a zip archive)")

    builder = flatbuffers.Builder(len(model_bytes) + len(metadata) + 4096)
    builder.Prep(16, len(model_bytes))  # data start 16-aligned from the end; minalign 16
    original = builder.CreateByteVector(model_bytes) - 4  # builder offset of model_bytes[0]

    def old(position):
        return original - position

    builder.Prep(16, len(metadata))
    data = builder.CreateByteVector(metadata)
    builder.StartObject(3)
    builder.PrependUOffsetTRelativeSlot(_BUFFER_DATA, data, 0)
    buffer = builder.EndObject()
    entry_name = builder.CreateString(METADATA_NAME)
    builder.StartObject(2)
    builder.PrependUOffsetTRelativeSlot(_METADATA_ENTRY_NAME, entry_name, 0)
    builder.PrependUint32Slot(_METADATA_ENTRY_BUFFER, len(buffers), 0)
    entry = builder.EndObject()
    new_vectors = {
        _MODEL_BUFFERS: _offsets(builder, [old(p) for p in buffers] + [buffer]),
        _MODEL_METADATA: _offsets(builder, [old(p) for p in entries] + [entry]),
    }
    builder.StartObject(_MODEL_SLOTS)
    for slot in range(1, _MODEL_SLOTS):
        if slot in new_vectors:
            builder.PrependUOffsetTRelativeSlot(slot, new_vectors[slot], 0)
        elif model.has(slot):
            builder.PrependUOffsetTRelativeSlot(slot, old(model.target(slot)), 0)
    builder.PrependUint32Slot(_MODEL_VERSION, model.scalar(_MODEL_VERSION, "<I"), 0)
    root = builder.EndObject()
    builder.Finish(root, MODEL_IDENTIFIER)
    return bytes(builder.Output())


def _append_files(model_bytes, files):
    """The associated files as a STORED zip after the flatbuffer (offsets from the file start, like
    MetadataPopulator's); fixed timestamps, so the same inputs give the same bytes."""
    stream = io.BytesIO(model_bytes)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            archive.writestr(zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return stream.getvalue()


def _check_classifier_model(model_bytes, num_labels):
    """One int32 `[1, L]` input and one float32 `[1, num_labels]` output in subgraph 0 (what MediaPipe reads)."""
    model = _root(model_bytes, MODEL_IDENTIFIER, "TFLite model")
    subgraphs = model.tables(_MODEL_SUBGRAPHS)
    if not subgraphs:
        raise ValueError("the model has no subgraph")
    subgraph = subgraphs[0]
    tensors = subgraph.tables(_SUBGRAPH_TENSORS)

    def describe(indices):
        return [(_TENSOR_TYPES.get(tensors[i].scalar(_TENSOR_TYPE, "<b"), "other"), tensors[i].ints(_TENSOR_SHAPE))
                for i in indices]

    inputs, outputs = describe(subgraph.ints(_SUBGRAPH_INPUTS)), describe(subgraph.ints(_SUBGRAPH_OUTPUTS))
    if len(inputs) != 1 or inputs[0][0] != "int32" or len(inputs[0][1]) != 2 or inputs[0][1][0] != 1:
        raise ValueError(f"MediaPipe's TextClassifier needs one int32 [1, L] input; the model has {inputs}")
    if len(outputs) != 1 or outputs[0][0] != "float32" or outputs[0][1] != [1, num_labels]:
        raise ValueError(f"expected one float32 [1, {num_labels}] output (one column per label); "
                         f"the model has {outputs}")


def _check_delimiter_pattern(pattern):
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("delimiter_pattern must be a non-empty regular expression")
    try:
        compiled = re.compile(pattern)
    except re.error:
        return  # RE2-only syntax: MediaPipe will judge it
    if compiled.fullmatch(""):
        raise ValueError(f"delimiter_pattern {pattern!r} matches the empty string")


def _associated_file_tables(root):
    """Every AssociatedFile the metadata records: model, subgraphs, then each tensor's files and tokenizer files."""

    def unit_files(units):
        found = []
        for unit in units:
            kind, options = unit.scalar(_UNIT_TYPE, "<B"), unit.table(_UNIT_OPTIONS)
            if kind == _UNIT_REGEX:
                found += options.tables(_REGEX_VOCABULARY)
            elif kind == _UNIT_BERT:
                found += options.tables(0)  # BertTokenizerOptions {vocab_file}
            elif kind == _UNIT_SENTENCE_PIECE:
                found += options.tables(0) + options.tables(1)  # {sentencePiece_model, vocab_file}
        return found

    found = list(root.tables(_MM_FILES))
    for subgraph in root.tables(_MM_SUBGRAPHS):
        found += subgraph.tables(_SG_FILES)
        for tensor in subgraph.tables(_SG_INPUTS) + subgraph.tables(_SG_OUTPUTS):
            found += tensor.tables(_TM_FILES) + unit_files(tensor.tables(_TM_UNITS))
        found += unit_files(subgraph.tables(_SG_INPUT_UNITS)) + unit_files(subgraph.tables(_SG_OUTPUT_UNITS))
    return found


# === Reading flatbuffers (no generated code needed) ==========================


def _root(data, identifier, what):
    if len(data) < 8 or data[4:8] != identifier:
        raise ValueError(f"not a {what} flatbuffer (file identifier {bytes(data[4:8])!r}, expected {identifier!r})")
    return _Table(data, struct.unpack_from("<I", data, 0)[0])


class _Table:
    """A flatbuffers table at `position` of `data`, read by slot number."""

    def __init__(self, data, position):
        self.data = data
        self.position = position
        self._vtable = position - struct.unpack_from("<i", data, position)[0]
        self._vtable_size = struct.unpack_from("<H", data, self._vtable)[0]

    def slot_count(self):
        return (self._vtable_size - 4) // 2

    def _field(self, slot):
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_size:
            return None
        offset = struct.unpack_from("<H", self.data, self._vtable + entry)[0]
        return self.position + offset if offset else None

    def has(self, slot):
        return self._field(slot) is not None

    def scalar(self, slot, fmt, default=0):
        field = self._field(slot)
        return default if field is None else struct.unpack_from(fmt, self.data, field)[0]

    def target(self, slot):
        field = self._field(slot)
        return None if field is None else field + struct.unpack_from("<I", self.data, field)[0]

    def table(self, slot):
        target = self.target(slot)
        return None if target is None else _Table(self.data, target)

    def string(self, slot):
        data = self.bytes(slot)
        return None if data is None else data.decode("utf-8")

    def bytes(self, slot):
        target = self.target(slot)
        if target is None:
            return None
        length = struct.unpack_from("<I", self.data, target)[0]
        return bytes(self.data[target + 4 : target + 4 + length])

    def ints(self, slot):
        target = self.target(slot)
        if target is None:
            return []
        length = struct.unpack_from("<I", self.data, target)[0]
        return list(struct.unpack_from(f"<{length}i", self.data, target + 4))

    def targets(self, slot):
        """Positions of the tables a vector of tables points at."""
        target = self.target(slot)
        if target is None:
            return []
        length = struct.unpack_from("<I", self.data, target)[0]
        elements = [target + 4 + 4 * index for index in range(length)]
        return [element + struct.unpack_from("<I", self.data, element)[0] for element in elements]

    def tables(self, slot):
        return [_Table(self.data, position) for position in self.targets(slot)]
