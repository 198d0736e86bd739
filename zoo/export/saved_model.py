"""SavedModels for TF Serving that take raw strings.

Signatures:
- `serving_default`: `text` string `[None]` -> `probabilities` float32
  `[None, num_classes]`, `class_id` int32 `[None]`, `label` string `[None]`.
- `predict_token_ids`: `token_ids` int32 `[None, sequence_length]` -> the same.

Tokenization runs in the graph with the classifier's own rules
(`WordTokenizer.split_words`) and its vocabulary as the SavedModel asset
`assets/vocabulary.txt`, read by a `TextFileInitializer` table. Only core TF
ops are used, so a stock TF Serving binary loads it.
"""

import pathlib

import keras
import tensorflow as tf

from zoo.export.archive import ExportArchive
from zoo.export.litert import token_id_model
from zoo.preprocessing import reference

TEXT_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "predict_token_ids"
SIGNATURES = (TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE)
WARMUP_FILENAME = "tf_serving_warmup_requests"


def write_saved_model(classifier, directory, vocabulary_file, warmup_texts=(), model_name=None):
    """Write `classifier` as a serving SavedModel into `directory`.

    Args:
        classifier: a `zoo.models.TextClassifier`.
        directory: destination (must not exist yet).
        vocabulary_file: a file holding the vocabulary, one word per line;
            copied into the SavedModel's `assets/`.
        warmup_texts: a few real texts written as TF Serving warm-up
            requests (`assets.extra/tf_serving_warmup_requests`).
        model_name: the model name TF Serving serves it under (used in the
            warm-up requests).
    """
    directory = pathlib.Path(directory)
    tokenizer = classifier.preprocessor.tokenizer
    sequence_length = classifier.sequence_length
    model = token_id_model(classifier)
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            str(vocabulary_file),
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        ),
        default_value=reference.OOV_ID,
    )
    class_names = tf.constant(classifier.class_names, dtype=tf.string)

    def outputs(token_ids):
        probabilities = model(token_ids, training=False)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_id": class_id, "label": tf.gather(class_names, class_id)}

    def serve_text(text):
        words = tokenizer.split_words(text)
        token_ids = tf.ragged.map_flat_values(lambda w: tf.cast(table.lookup(w), tf.int32), words)
        return outputs(token_ids.to_tensor(default_value=reference.PAD_ID, shape=[None, sequence_length]))

    archive = ExportArchive()
    archive.track(model)
    archive.track(table)
    archive.add_endpoint(
        TEXT_SIGNATURE, serve_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    archive.add_endpoint(
        TOKEN_IDS_SIGNATURE,
        outputs,
        input_signature=[tf.TensorSpec([None, sequence_length], tf.int32, name="token_ids")],
    )
    archive.write_out(str(directory), verbose=False)
    if warmup_texts:
        texts = list(warmup_texts)
        # Batch sizes 1 and len(texts): TF Serving warms each shape it sees.
        write_warmup_requests(
            directory, model_name or classifier.name, TEXT_SIGNATURE,
            [{"text": tf.constant(texts[:1])}, {"text": tf.constant(texts)}],
        )
    return directory


def write_warmup_requests(directory, model_name, signature_name, batches):
    """`assets.extra/tf_serving_warmup_requests`: one PredictionLog per batch.

    Args:
        batches: list of `{input_name: value}`; TF Serving runs each at load
            time, so give every batch shape clients will send.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    extra = pathlib.Path(directory) / "assets.extra"
    extra.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILENAME)) as writer:
        for inputs in batches:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for input_name, value in inputs.items():
                request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def read_warmup_requests(directory):
    """The warm-up requests as `PredictRequest` protos (for checks and tests)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = pathlib.Path(directory) / "assets.extra" / WARMUP_FILENAME
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
