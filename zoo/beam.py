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
end, so a failed pipeline leaves no shard behind.

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
import json
import logging

from zoo import labelling

# Importing Beam logs a root-level warning about optional Google Cloud clients (apitools, BigQuery) that
# a pipeline reading local or mounted files never uses.
_root = logging.getLogger()
_level, _root.level = _root.level, logging.ERROR
try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
finally:
    _root.setLevel(_level)


class ZooModelHandler(ModelHandler):
    """`RunInference`'s handler for a zoo classifier: raw texts in, `PredictionResult(text, decision)` out.

    Args:
        model_path: what `zoo.labelling.open_predictor` opens, readable on every worker.
        min_batch_size, max_batch_size: the batches Beam hands the model.
    """

    def __init__(self, model_path, *, min_batch_size=32, max_batch_size=256):
        super().__init__()
        self._model_path = str(model_path)
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        return labelling.open_predictor(self._model_path, threads=1)

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


def label_files(pipeline, model, input_pattern, output_prefix, *, text_column="text", id_column="id", encoding=None):
    """Add the labelling steps to `pipeline`: files matching `input_pattern` -> JSONL shards at `output_prefix`."""
    return (
        pipeline
        | "Match" >> fileio.MatchFiles(input_pattern)
        | "Open" >> fileio.ReadMatches()
        | "Read" >> beam.FlatMap(_file_records, text_column, id_column, encoding)
        | "Spread" >> beam.Reshuffle()  # a file is read by one worker; its texts are labelled by all
        | "Label" >> RunInference(KeyedModelHandler(ZooModelHandler(model)))
        | "Format" >> beam.Map(_row)
        | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".jsonl")
    )


def pipeline_options(beam_args):
    """Beam options from the command line; with no runner named, the DirectRunner on every core, in processes."""
    options = PipelineOptions(beam_args)
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = "DirectRunner"
        direct = options.view_as(DirectOptions)
        direct.direct_running_mode = direct.direct_running_mode or "multi_processing"
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
    args, beam_args = parser.parse_known_args(argv)
    with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
        label_files(pipeline, args.model, args.input, args.output, text_column=args.text_column,
                    id_column=args.id_column, encoding=args.encoding)


if __name__ == "__main__":
    main()
