"""Label a corpus: texts streamed from a file, predicted in batches on every core, written in input order.

`label_corpus(model, input, output)` is what `zoo predict MODEL --input F
--output F` runs. Memory does not grow with the corpus: the input is read a
batch at a time and at most `2 x threads` calls are in flight. A runner that
pads each batch only to its longest text (an ONNX file, whose time dimension
is dynamic) gets `LENGTH_SORTED_BATCHES` batches a call, which it runs
shortest texts first; their rows are still written batch by batch in input
order.

- Model: a `.keras` file (or its folder, or a registered name trained into
  `saved_models/`), an exported SavedModel version folder, or an exported
  `.tflite` / `.onnx` file (run by `zoo.runtime`, no TensorFlow).
- Input: JSONL (`.jsonl`, `.json`: one object per line, the text in
  `text_column`), CSV / TSV (`.csv`, `.tsv`: a header naming `text_column`),
  or plain text (anything else, or `-` for stdin: one text per line). The
  encoding is decided per file as training decides it (UTF-8; a legacy
  8-bit file without any UTF-8 is cp1252), unless `encoding` says; a line
  that does not decode is an error naming the file, the line and the byte.
- Output: JSONL (`.jsonl`, and `-` for stdout) or CSV (`.csv`, `.tsv`), one
  row per input row, in input order: its id (`id_column` when the input has
  it, else the 1-based line or record number), the label and its
  probability; a multi-label model's every label over its threshold; with
  `probabilities=True` also every class's probability.
- Resuming: a progress file beside the output (`<output>.progress.json`)
  records how many rows and bytes are complete, written after each batch. A
  killed run restarted with the same command cuts the output back to that
  point and continues from the next input row, so no row is written twice or
  dropped; the progress file also names the model and input, and a different
  job refuses to continue another's output. A finished run removes it.
"""

import concurrent.futures
import csv
import dataclasses
import io
import json
import os
import pathlib
import sys
import threading
import time

import numpy as np

from zoo.evaluation import labels_over_thresholds

PROGRESS_SUFFIX = ".progress.json"
JSON_SUFFIXES = (".jsonl", ".json")
# Batches a call for a runner that orders a call's texts by length and pads each batch only to its longest:
# the more texts it sorts, the closer each batch's lengths (the labels do not change; the memory held is
# this many times the batches in flight).
LENGTH_SORTED_BATCHES = 16
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}


class LabellingError(ValueError):
    """A bad input, output or model for labelling, said in one line."""


@dataclasses.dataclass
class LabellingResult:
    rows: int  # rows written by this run
    resumed_from: int  # rows already in the output when it started
    seconds: float

    @property
    def texts_per_second(self):
        return self.rows / self.seconds if self.seconds else 0.0


# === Models ===


class Predictor:
    """Probabilities for a batch of texts, with the class names (and thresholds, for a multi-label model).

    `batches_per_call`: how many batches' texts `probabilities` is best given at once.
    """

    def __init__(self, probabilities, class_names, thresholds=None, describe="", batches_per_call=1):
        self.probabilities = probabilities
        self.class_names = list(class_names)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, np.float32)
        self.describe = describe
        self.batches_per_call = batches_per_call


def open_predictor(model, threads=1, long_documents=False):
    """A `Predictor` for `model` (see the module docstring for what it may be); `long_documents`: each
    text read whole, in windows whose probabilities are averaged (`zoo.runtime.documents`)."""
    path = pathlib.Path(model)
    suffix = path.suffix
    if suffix in (".tflite", ".onnx"):
        return _runtime_predictor(path, threads, long_documents)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _saved_model_predictor(path, long_documents)
    from zoo.saving import load_model

    classifier = load_model(model)
    if not hasattr(classifier, "class_names"):
        raise LabellingError(f"{model}: a {type(classifier).__name__} is not a text classifier")
    # One call at a time: Keras builds and counts state on the model (TensorFlow spreads each call over the
    # cores itself). predict_on_batch, not predict: the same numbers, without predict's per-call tf.data
    # pipeline and callbacks (2x the texts/s at batches of 256 here).
    lock = threading.Lock()

    def probabilities(texts):
        with lock:
            if long_documents:
                return classifier.predict_documents(texts)
            return np.asarray(classifier.predict_on_batch(texts))

    return Predictor(probabilities, classifier.class_names, getattr(classifier, "thresholds", None), f"{model} (Keras)")


def _runtime_predictor(path, threads, long_documents=False):
    import zoo.runtime

    # A LiteRT interpreter serves one call at a time: every worker thread opens its own on the same file.
    local = threading.local()
    first = zoo.runtime.load(path, num_threads=1)
    if not hasattr(first, "class_names"):
        raise LabellingError(f"{path}: a {first.spec['task']} file, not a classifier")

    def probabilities(texts):
        runner = getattr(local, "runner", None)
        if runner is None:
            runner = local.runner = zoo.runtime.load(path, num_threads=1, verify=False)
        return np.asarray(runner.predict_documents(texts) if long_documents else runner.predict(texts))

    return Predictor(probabilities, first.class_names, getattr(first, "thresholds", None), str(path),
                     batches_per_call=LENGTH_SORTED_BATCHES if getattr(first, "any_length", False) else 1)


def _saved_model_predictor(path, long_documents=False):
    import tensorflow as tf

    from zoo.export.manifest import MANIFEST_FILENAME

    manifest_path = path / MANIFEST_FILENAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        class_names = manifest["labels"]
    except (OSError, ValueError, KeyError):
        raise LabellingError(f"{manifest_path}: expected zoo's export manifest with the model's labels") from None
    signatures = tf.saved_model.load(str(path)).signatures
    name = "serving_documents" if long_documents else "serving_default"
    if name not in signatures:
        raise LabellingError(f"{path}: the SavedModel has no {name} signature (an export older than zoo's "
                             "long-document mode); export the model again")
    serve = signatures[name]
    return Predictor(lambda texts: serve(text=tf.constant(texts))["probabilities"].numpy(), class_names,
                     manifest.get("thresholds"), f"{path} (SavedModel)")


# === Input ===


def read_records(source, *, text_column="text", id_column="id", encoding=None, position=None, opener=None):
    """`(id, text)` for every row of `source` (a path or `-`), streamed, in order.

    `position`, a dict, gets `"bytes"`: how far into the input the reader is.
    `opener`: a callable returning `source` opened in binary (e.g. Beam's
    file systems), used instead of opening the path (twice without
    `encoding`: once to decide it).
    """
    name = "<stdin>" if str(source) == "-" else str(source)
    suffix = "" if name == "<stdin>" else pathlib.PurePosixPath(str(source)).suffix.lower()
    lines = _decoded_lines(source, name, encoding, {} if position is None else position, opener)
    if suffix in JSON_SUFFIXES:
        return _json_records(lines, name, text_column, id_column)
    if suffix in DELIMITED_SUFFIXES:
        return _delimited_records(lines, name, DELIMITED_SUFFIXES[suffix], text_column, id_column)
    return ((number, line.rstrip("\r\n")) for number, line in lines)


def _decoded_lines(source, name, encoding, position, opener=None):
    """`(line number, text)` of each line, decoded strictly: a bad byte is an error naming line and offset.

    Without `encoding`, a file is decided as training decides it (`zoo.data`): a byte-order mark says
    UTF-8; all UTF-8 is UTF-8; UTF-8 text with a byte that is not is an error; a file with no UTF-8
    sequence at all is a legacy 8-bit file (cp1252, else Latin-1). Deciding takes one streaming pass
    over the file first. Stdin is read as UTF-8.
    """
    if name != "<stdin>" and opener is None:
        path = pathlib.Path(source)
        if not path.exists():
            raise LabellingError(f"{name}: no such file")
        if not path.is_file():
            raise LabellingError(f"{name}: not a regular file (a folder, FIFO or device cannot be labelled)")
        opener = lambda: open(path, "rb")  # noqa: E731, SIM115 - closed below
    if encoding is None and opener is not None:
        encoding = _file_encoding(opener, name)
    stream = sys.stdin.buffer if opener is None else opener()
    codec = encoding or "utf-8"
    try:
        offset = 0
        for number, raw in enumerate(stream, start=1):
            if number == 1 and codec.replace("-", "").lower() in ("utf8", "utf8sig") and raw.startswith(_UTF8_BOM):
                raw, offset = raw[len(_UTF8_BOM):], len(_UTF8_BOM)
            try:
                yield number, raw.decode(codec)
            except UnicodeDecodeError as error:
                raise LabellingError(
                    f"{name}: line {number} is not valid {codec} (byte {offset + error.start}); "
                    "pass --encoding with the file's encoding") from None
            except LookupError:
                raise LabellingError(f"--encoding: unknown encoding {codec!r}") from None
            offset += len(raw)
            position["bytes"] = offset
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 (and UTF-32 LE starts the same)


def _file_encoding(opener, name):
    """The encoding training's rule gives the file `opener()` opens, from one streaming pass (`_decoded_lines`)."""
    utf8_text, first_bad, legacy = False, None, "cp1252"
    with opener() as file:
        head = file.read(4)
        if head.startswith(_UTF8_BOM):
            return "utf-8"
        if head[:2] in _WIDE_BOMS or head == b"\x00\x00\xfe\xff":
            raise LabellingError(f"{name}: UTF-16 or UTF-32 (a byte-order mark says so); convert it to UTF-8 "
                                 "(iconv -t UTF-8) or pass --encoding")
    with opener() as file:
        offset = 0
        for number, raw in enumerate(file, start=1):
            if not raw.isascii():
                try:
                    raw.decode("utf-8")
                    utf8_text = True
                except UnicodeDecodeError as error:
                    first_bad = first_bad or (number, offset + error.start)
                    if legacy == "cp1252":
                        try:
                            raw.decode("cp1252")
                        except UnicodeDecodeError:
                            legacy = "latin-1"
            if utf8_text and first_bad:
                raise LabellingError(f"{name}: line {first_bad[0]} is not valid UTF-8 (byte {first_bad[1]}), yet "
                                     "the file holds UTF-8 text; fix that line, or pass --encoding with the whole "
                                     "file's encoding")
            offset += len(raw)
    return legacy if first_bad else "utf-8"


def _json_records(lines, name, text_column, id_column):
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise LabellingError(f"{name}: line {number} is not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
            raise LabellingError(f"{name}: line {number}: expected an object with a string {text_column!r} field")
        yield record.get(id_column, number), record[text_column]


def _delimited_records(lines, name, delimiter, text_column, id_column):
    current = [0]

    def numbered():
        for number, line in lines:
            current[0] = number
            yield line

    reader = csv.reader(numbered(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    if header.count(text_column) != 1:
        found = "twice" if header.count(text_column) > 1 else "not at all"
        raise LabellingError(f"{name}: the header names column {text_column!r} {found}; expected it once "
                             f"(header: {', '.join(header)})")
    text_index = header.index(text_column)
    id_index = header.index(id_column) if id_column in header else None
    for row_number, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) != len(header):
            raise LabellingError(f"{name}: line {current[0]}: {len(row)} fields, the header has {len(header)}")
        yield (row[id_index] if id_index is not None else row_number), row[text_index]


# === Output ===


def decisions(predictor, probabilities):
    """Per row `{"label", "score"}`, or a multi-label model's `{"labels", "scores"}` over their thresholds."""
    names, thresholds = predictor.class_names, predictor.thresholds
    if thresholds is None:  # one argmax for the whole batch: row by row it took ~9 µs a row
        probabilities = np.asarray(probabilities)
        best = probabilities.argmax(axis=1)
        for index, score in zip(best.tolist(), probabilities[np.arange(len(best)), best].tolist()):
            yield {"label": names[index], "score": round(score, 6)}
        return
    for row in probabilities:
        chosen = labels_over_thresholds(row, names, thresholds)
        yield {"labels": [name for name, _ in chosen], "scores": [round(score, 6) for _, score in chosen]}


class _Writer:
    """Rows to JSONL or CSV text, one batch at a time."""

    def __init__(self, kind, predictor, probabilities):
        self.kind = kind
        self.predictor = predictor
        self.probabilities = probabilities

    def header(self):
        if self.kind == "jsonl":
            return ""
        columns = ["id", "labels", "scores"] if self.predictor.thresholds is not None else ["id", "label", "score"]
        if self.probabilities:
            columns += [f"p:{name}" for name in self.predictor.class_names]
        return self._csv_line(columns)

    def rows(self, ids, probabilities):
        lines = []
        for identifier, row, decision in zip(ids, probabilities, decisions(self.predictor, probabilities)):
            fields = {"id": identifier, **decision}
            if self.probabilities:
                fields["probabilities"] = {name: round(float(p), 6) for name, p in zip(self.predictor.class_names, row)}
            lines.append(self._line(fields))
        return "".join(lines)

    def _line(self, fields):
        if self.kind == "jsonl":
            return json.dumps(fields, ensure_ascii=False) + "\n"
        values = [fields["id"]]
        if "labels" in fields:
            values += [json.dumps(fields["labels"], ensure_ascii=False), json.dumps(fields["scores"])]
        else:
            values += [fields["label"], fields["score"]]
        values += list(fields.get("probabilities", {}).values())
        return self._csv_line(values)

    def _csv_line(self, values):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t" if self.kind == "tsv" else ",", lineterminator="\n").writerow(values)
        return buffer.getvalue()


def _output_kind(output):
    if str(output) == "-":
        return "jsonl"
    suffix = pathlib.Path(output).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    raise LabellingError(f"{output}: expected an output ending in .jsonl, .csv or .tsv (or - for stdout)")


def _job(model, source, text_column, id_column, probabilities, kind, long_documents):
    """What must match for a run to continue another's output."""
    source_path = pathlib.Path(source)
    stat = source_path.stat()
    return {"model": str(pathlib.Path(model).resolve()) if pathlib.Path(model).exists() else str(model),
            "input": str(source_path.resolve()), "input_bytes": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
            "text_column": text_column, "id_column": id_column, "probabilities": probabilities, "output": kind,
            "long_documents": long_documents}


def _write_progress(path, job, rows, size):
    temporary = path.with_name(path.name + f".tmp-{os.getpid()}")
    temporary.write_text(json.dumps({"job": job, "rows": rows, "bytes": size}), encoding="utf-8")
    os.replace(temporary, path)


# === The job ===


def label_corpus(model, source, output, *, text_column="text", id_column="id", encoding=None, batch_size=256,
                 threads=None, probabilities=False, overwrite=False, progress=None, long_documents=False):
    """Label every text of `source` with `model` into `output`; see the module docstring. Returns `LabellingResult`.

    `long_documents`: read each text whole (windows over it, their probabilities averaged,
    `zoo.runtime.documents`) instead of cut at the model's window; costs one prediction per window.
    """
    threads = threads or os.cpu_count() or 1
    if batch_size < 1 or threads < 1:
        raise LabellingError(f"--batch-size and --threads: expected positive numbers, got {batch_size} and {threads}")
    kind = _output_kind(output)
    to_stdout = str(output) == "-"
    resumable = not to_stdout and str(source) != "-"
    progress_path = None if to_stdout else pathlib.Path(str(output) + PROGRESS_SUFFIX)
    position = {"bytes": 0}
    records = read_records(source, text_column=text_column, id_column=id_column, encoding=encoding,
                           position=position)
    job = _job(model, source, text_column, id_column, probabilities, kind, long_documents) if resumable else None
    done = 0
    if not to_stdout:
        output = pathlib.Path(output)
        done = _prepare_output(output, progress_path, overwrite, job)
    predictor = open_predictor(model, threads, long_documents)
    writer = _Writer(kind, predictor, probabilities)
    total_bytes = pathlib.Path(source).stat().st_size if str(source) != "-" else None
    started = time.perf_counter()
    written = 0
    stream = sys.stdout if to_stdout else open(output, "a" if done else "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        if not done:
            stream.write(writer.header())
        calls = _batches(records, batch_size * predictor.batches_per_call, skip=done, position=position)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for call_ids, call_scores in _in_order(pool, predictor, calls, window=2 * threads):
                for offset in range(0, len(call_ids), batch_size):
                    ids, scores = call_ids[offset : offset + batch_size], call_scores[offset : offset + batch_size]
                    stream.write(writer.rows(ids, scores))
                    stream.flush()
                    written += len(ids)
                    if job is not None:
                        os.fsync(stream.fileno())
                        _write_progress(progress_path, job, done + written, stream.tell())
                    if progress is not None:
                        start = position.get("start", 0)  # where this run's reading began, past any resumed rows
                        progress(done + written, time.perf_counter() - started, written,
                                 position["bytes"] - start, None if total_bytes is None else total_bytes - start)
    finally:
        if not to_stdout:
            stream.close()
    if progress_path is not None and progress_path.exists():
        progress_path.unlink()
    return LabellingResult(rows=written, resumed_from=done, seconds=time.perf_counter() - started)


def _prepare_output(output, progress_path, overwrite, job):
    """Rows already complete in `output` (0 for a fresh one), after cutting back an interrupted batch."""
    if output.is_dir():
        raise LabellingError(f"{output}: is a folder; expected a file to write")
    if not output.parent.is_dir():
        raise LabellingError(f"{output}: no folder {output.parent} to write into")
    if overwrite or not output.exists():
        if progress_path.exists():
            progress_path.unlink()
        return 0
    if not progress_path.exists():
        raise LabellingError(f"{output}: exists and is complete (no {progress_path.name}); pass --overwrite to "
                             "label again")
    try:
        state = json.loads(progress_path.read_text(encoding="utf-8"))
        rows, size = int(state["rows"]), int(state["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LabellingError(f"{progress_path}: unreadable progress record; pass --overwrite to start over") from None
    if job and state.get("job") != job:
        differing = sorted(key for key in job if state.get("job", {}).get(key) != job[key])
        raise LabellingError(f"{output}: another job's partial output (its {', '.join(differing)} differ); pass "
                             "--overwrite or choose another --output")
    if output.stat().st_size < size:
        raise LabellingError(f"{output}: shorter than its progress record ({size} bytes); pass --overwrite")
    with open(output, "r+b") as file:  # drop what a killed batch wrote after the last recorded row
        file.truncate(size)
    return rows


def _batches(records, batch_size, skip=0, position=None):
    ids, texts = [], []
    for index, (identifier, text) in enumerate(records):
        if index < skip:
            continue
        if index == skip and position is not None:
            position["start"] = position.get("bytes", 0)
        ids.append(identifier)
        texts.append(text)
        if len(texts) == batch_size:
            yield ids, texts
            ids, texts = [], []
    if texts:
        yield ids, texts


def _in_order(pool, predictor, batches, window):
    """`(ids, probabilities)` per batch in input order, with at most `window` batches submitted ahead."""
    pending = []
    for ids, texts in batches:
        pending.append((ids, pool.submit(predictor.probabilities, texts)))
        if len(pending) >= window:
            ids_done, future = pending.pop(0)
            yield ids_done, future.result()
    for ids_done, future in pending:
        yield ids_done, future.result()


def progress_printer(stream=sys.stderr):
    """A `progress` callback drawing one line on a terminal (texts, texts/s, ETA), or None when not a terminal."""
    if not stream.isatty():
        return None

    def show(total_rows, seconds, rows_this_run, bytes_read, bytes_to_read):
        rate = rows_this_run / seconds if seconds else 0.0
        line = f"\r{total_rows:,} texts  {rate:,.0f} texts/s"
        if bytes_to_read and bytes_read:
            remaining = seconds * (bytes_to_read - bytes_read) / bytes_read
            line += f"  {min(bytes_read / bytes_to_read, 1):.0%}  ETA {int(remaining) // 60}:{int(remaining) % 60:02d}"
        stream.write(line + "   ")
        stream.flush()

    return show
