"""Label a corpus on Apache Beam: Beam's `RunInference` with a `ModelHandler` for zoo's models.

    python -m zoo.beam --model saved_models/lstm_classifier/1/litert/model.tflite \\
        --input 'corpus/*.jsonl' --output labels/part [Beam pipeline options]

reads every file matching `--input` with the same rules as `zoo predict
--input` (JSONL, CSV/TSV or plain text by suffix; strict UTF-8; errors name
the file and line), labels each text with `ZooModelHandler` and writes JSONL
shards `<output>-00000-of-0000N.jsonl`, one row per input row:
`{"file", "id", "label", "score"}` (a multi-label model: `"labels"`,
`"scores"`). Rows are keyed by (file, id), so nothing depends on order across
workers; Beam's file sink writes to temporary files and renames them at the
end; when the pipeline fails `main` also removes what the run wrote (shards and
Beam's `beam-temp-*` folder), so rerunning the same command is safe.

Beam's FnApiRunner does not retry a bundle whose SDK worker process died: a
worker killed mid-bundle fails the pipeline ("Channel closed prematurely"),
and one killed before it connected left the runner waiting forever. Importing
this module registers `WatchedSubprocessWorkerHandler` for Beam's subprocess
workers, which turns the second case into the first.

Without runner options this runs on Beam's DirectRunner in multi-process mode
on every core. The same command runs on any Beam runner (`--runner
DataflowRunner --project ... --region ... --temp_location gs://...`,
`--runner FlinkRunner --flink_master ...`, `--runner SparkRunner ...`); the
model path must then be readable by the workers (a shared file system, or a
worker image holding it).

The model may be anything `zoo.labelling.open_predictor` opens: an exported
`.tflite` / `.onnx` file (no TensorFlow on the workers), an exported
SavedModel version folder, or a `.keras` file. Needs `pip install zoo[beam]`.
"""

import argparse
import glob
import json
import logging
import os
import sys
import threading

from zoo import extras, labelling

try:
    extras.require("apache_beam", "zoo.beam")
except extras.MissingExtraError as missing:
    if __name__ == "__main__":
        sys.exit(f"python -m zoo.beam: {missing}")
    raise

# Importing Beam logs a root-level warning about optional Google Cloud clients (apitools, BigQuery) that
# a pipeline reading local or mounted files never uses.
_root = logging.getLogger()
_level, _root.level = _root.level, logging.ERROR
try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
    from apache_beam.portability import python_urns
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers
finally:
    _root.setLevel(_level)


@worker_handlers.WorkerHandler.register_environment(python_urns.SUBPROCESS_SDK, bytes)
class WatchedSubprocessWorkerHandler(worker_handlers.SubprocessSdkWorkerHandler):
    """Beam's handler for a DirectRunner worker process, failing the running bundle when the process dies.

    Beam's own handler only logs the worker's exit: a bundle sent to a worker that died before it had
    connected then waits forever. Closing the worker's control and data connections makes the runner raise
    as it does for a worker that dies mid-bundle.
    """

    _closing = False

    def start_worker(self):
        self.worker = local_job_service.SubprocessSdkWorker(
            self._worker_command_line, self.control_address, self.provision_info, self.worker_id)
        self.worker_thread = threading.Thread(name="run_worker", target=self._run_worker)
        self.worker_thread.start()

    def _run_worker(self):
        try:
            self.worker.run()  # raises when the process exits with a non-zero status
        except RuntimeError as died:
            if self._closing:
                raise
            logging.getLogger(__name__).error("Beam SDK worker %s died: %s", self.worker_id, died)
            self.control_conn.abort(died)
            try:
                self.data_conn.close()  # the runner's reader then raises "Channel closed prematurely"
            except Exception:  # noqa: BLE001 (the channel already failed: the runner raises on its own)
                pass

    def close(self):
        self._closing = True
        super().close()


class ZooModelHandler(ModelHandler):
    """`RunInference`'s handler for a zoo classifier: raw texts in, `PredictionResult(text, decision)` out.

    Args:
        model_path: what `zoo.labelling.open_predictor` opens, readable on every worker.
        long_documents: read each text whole (windows over it, probabilities averaged).
        min_batch_size, max_batch_size: the batches Beam hands the model.
    """

    def __init__(self, model_path, *, min_batch_size=32, max_batch_size=256, long_documents=False):
        super().__init__()
        self._model_path = str(model_path)
        self._long_documents = long_documents
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        return labelling.open_predictor(self._model_path, threads=1, long_documents=self._long_documents)

    def run_inference(self, batch, model, inference_args=None):
        texts = list(batch)
        decisions = labelling.decisions(model, model.probabilities(texts))
        return [PredictionResult(text, decision, model_id=self._model_path) for text, decision in zip(texts, decisions)]

    def get_num_bytes(self, batch):
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self):
        return "zoo"

    def batch_elements_kwargs(self):
        return self._batching


def _file_records(readable_file, text_column, id_column, encoding):
    path = readable_file.metadata.path
    for identifier, text in labelling.read_records(path, text_column=text_column, id_column=id_column,
                                                   encoding=encoding, opener=readable_file.open):
        yield (path, identifier), text


def _row(keyed):
    (path, identifier), result = keyed
    return json.dumps({"file": path, "id": identifier, **result.inference}, ensure_ascii=False)


def label_files(pipeline, model, input_pattern, output_prefix, *, text_column="text", id_column="id", encoding=None,
                long_documents=False):
    """Add the labelling steps to `pipeline`: files matching `input_pattern` -> JSONL shards at `output_prefix`."""
    return (
        pipeline
        | "Match" >> fileio.MatchFiles(input_pattern)
        | "Open" >> fileio.ReadMatches()
        | "Read" >> beam.FlatMap(_file_records, text_column, id_column, encoding)
        | "Spread" >> beam.Reshuffle()  # a file is read by one worker; its texts are labelled by all
        | "Label" >> RunInference(KeyedModelHandler(ZooModelHandler(model, long_documents=long_documents)))
        | "Format" >> beam.Map(_row)
        | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".jsonl")
    )


def pipeline_options(beam_args):
    """Beam options from the command line; with no runner named, the DirectRunner on every core, in processes."""
    options = PipelineOptions(beam_args)
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = "DirectRunner"
        direct = options.view_as(DirectOptions)
        # Beam's own default is "in_memory" (one process), so only an explicit choice is kept.
        if not any(arg.split("=")[0] == "--direct_running_mode" for arg in beam_args):
            direct.direct_running_mode = "multi_processing"
        if not direct.direct_num_workers:
            direct.direct_num_workers = 0  # one per core
    return options


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.beam", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an exported .tflite/.onnx file, SavedModel folder or .keras")
    parser.add_argument("--input", required=True, help="file pattern of the texts (JSONL, CSV/TSV or plain text)")
    parser.add_argument("--output", required=True, help="output prefix: <output>-SSSSS-of-NNNNN.jsonl")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--encoding", help="the files' encoding (default: decided per file, as zoo train does)")
    parser.add_argument("--long-documents", action="store_true",
                        help="read each text whole (windows over it, probabilities averaged), as zoo predict does")
    args, beam_args = parser.parse_known_args(argv)
    written_before = _written_by_sink(args.output)
    try:
        with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
            label_files(pipeline, args.model, args.input, args.output, text_column=args.text_column,
                        id_column=args.id_column, encoding=args.encoding, long_documents=args.long_documents)
    except Exception as failure:  # noqa: BLE001 (any failure of the run: Beam's, a worker's, the model's)
        logging.getLogger(__name__).debug("the pipeline failed", exc_info=True)
        removed = _remove_written_since(args.output, written_before)
        reason = (str(failure).strip().splitlines() or [type(failure).__name__])[-1]
        sys.exit(f"python -m zoo.beam: the pipeline failed ({type(failure).__name__}: {reason}); "
                 f"removed the {removed} file(s) and folder(s) it had written at {args.output}; "
                 f"rerunning the same command is safe")


def _sink_patterns(output_prefix):
    """What `WriteToText(output_prefix, file_name_suffix=".jsonl")` writes: its shards and its temporary folder."""
    folder, name = FileSystems.split(output_prefix)
    return [f"{output_prefix}-*-of-*.jsonl", FileSystems.join(folder, f"beam-temp-{name}-*")]


def _written_by_sink(output_prefix):
    """{path: (size, mtime)} of the sink's files, and its temporary folders where the file system has folders."""
    found = {}
    for pattern in _sink_patterns(output_prefix):
        for match in FileSystems.match([pattern])[0].metadata_list:  # files only, those in folders included
            found[match.path] = (match.size_in_bytes, match.last_updated_in_seconds)
        if "://" not in pattern:  # an object store has no folders; a local (or mounted) one keeps empty ones
            found.update((folder, "folder") for folder in glob.glob(pattern) if os.path.isdir(folder))
    return found


def _remove_written_since(output_prefix, written_before):
    """Delete the sink's shards and temporary folders that are new or changed since `written_before`."""
    written = [path for path, stamp in _written_by_sink(output_prefix).items() if written_before.get(path) != stamp]
    new_folders = [path for path in written if written_before.get(path) is None and os.path.isdir(path)]
    inside_new_folders = tuple(folder + os.sep for folder in new_folders)
    removed = new_folders + [path for path in written
                             if path not in new_folders and not path.startswith(inside_new_folders)]
    if removed:
        FileSystems.delete(removed)  # a folder with what it holds
    return len(removed)


if __name__ == "__main__":
    main()
