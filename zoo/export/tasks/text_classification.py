"""How a `TextClassifier` exports: its graphs, its sidecar description, its validation data and parity rules.

- Serving graph: `serving_default` takes raw strings (`text` string `[None]`),
  tokenized in the graph with the classifier's own rules
  (`WordTokenizer.split_words`) and its vocabulary as the asset
  `vocabulary.txt` (core TF ops only, so a stock TF Serving binary loads
  it); `predict_token_ids` takes int32 `[None, sequence_length]`. Both
  return `probabilities`, `class_id`, `label`. `serving_documents` reads
  each raw string whole, in windows (`zoo.runtime.documents`), and returns
  their mean `probabilities`.
- Runtime graph: int32 `token_ids` `[batch, sequence_length]` ->
  `probabilities`, the backbone traced by its architecture's recipe for the
  format's `RuntimeTarget`, then the classifier's own head. A target with
  `any_length` (ONNX) gets `[batch, None]`: ids padded to any length up to
  the window give the window's probabilities (every family masks padding id
  0), so a runner pads a batch only to its longest text; the export checks
  that path too (`PADDED_TO_LONGEST`).
- Description: the labels and the reference tokenizer (rules, vocabulary,
  window), so a runner turns raw text into the same ids.

Every file is checked on the validation split against Keras: float32 files
within `validate.FLOAT32_TOLERANCE` of Keras's probabilities on every
runtime; other variants report label agreement and the accuracy change.
Long documents (validation texts run together, up to past the last window)
are checked the same way wherever an artifact reads documents. A
runtime that tokenizes the raw text itself (its outputs carry `ids_exact`)
is held to the zoo runner on the same kernels where its ids are exact.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo.export import validate
from zoo.export.architectures import recipe_for
from zoo.export.errors import ExportError, ParityError
from zoo.export.graphs import Endpoint, Graph, RuntimeTarget
from zoo.export.tasks import register_task
from zoo.export.tasks.base import ExportTask
from zoo.models.text_classifier import TextClassifier
from zoo.preprocessing import reference
from zoo.preprocessing.reference import ReferenceWordTokenizer
from zoo.models.documents import document_windows, pool_windows, predict_documents
from zoo.runtime.documents import MAX_WINDOWS
from zoo.runtime.sidecar import sidecar_path
from zoo.runtime.text_classifier import DOCUMENT_OUTPUT, PADDED_TO_LONGEST

CALIBRATION_EXAMPLES = 200
INPUT_NAME = "token_ids"
FEATURES_NAME = "features"
OUTPUT_NAME = "probabilities"
TEXT_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "predict_token_ids"
DOCUMENTS_SIGNATURE = "serving_documents"
# Runtime files' one signature (LiteRT and ONNX name theirs the same).
RUNTIME_SIGNATURE = "serving_default"


@dataclasses.dataclass
class ClassifierValidation:
    texts: list
    labels: object  # int array, or None for unlabeled texts
    token_ids: np.ndarray
    calibration_texts: list
    keras_probabilities: np.ndarray = None
    documents: list = None  # long texts made of the validation texts (`document_texts`)
    keras_document_probabilities: np.ndarray = None


@register_task(TextClassifier)
class TextClassificationExport(ExportTask):
    name = "text-classification"
    default_formats = ("saved_model", "litert", "onnx")
    variants = ("float16", "dynamic_int8", "int8", "batch32")
    default_variants = variants
    splits_at_features = True

    # === Arguments and data ===

    def check_model(self, model):
        super().check_model(model)
        if not model.preprocessor.tokenizer.is_adapted:
            raise ExportError(f"{model.name}: the tokenizer has no vocabulary yet; adapt and train the model first")

    def validation_set(self, model, data, calibration_texts, trained_split, options):
        """Held-out texts (and labels) to validate on, plus training texts to calibrate int8 on.

        Default: the split the model was trained against (`trained_split`),
        else rt-polarity's seeded validation split.
        """
        from zoo.data import TextDataset, load_texts

        train = None
        if data is None:
            if trained_split is not None:
                train, data = trained_split
            else:
                dataset = load_texts()
                if list(dataset.class_names) != list(model.class_names):
                    raise ExportError(
                        f"validation_data is required: the model's classes {list(model.class_names)} are not "
                        f"the default dataset's {list(dataset.class_names)}"
                    )
                train, data = dataset.split()
        if isinstance(data, TextDataset):
            texts, labels = list(data.texts), np.asarray(data.labels)
        elif isinstance(data, tuple) and len(data) == 2:
            texts, labels = list(data[0]), np.asarray(data[1])
        else:
            texts, labels = list(data), None
        if not texts or not all(isinstance(text, str) for text in texts):
            raise ExportError("validation_data must hold at least one text, and only str texts")
        if calibration_texts is None:
            # Calibrate on training text when we know it; else on the validation
            # texts (their labels are never used for calibration).
            calibration_texts = train.texts if train is not None else texts
        order = np.random.default_rng(0).permutation(len(calibration_texts))[:CALIBRATION_EXAMPLES]
        return ClassifierValidation(texts, labels, model.preprocessor.reference().encode(texts),
                                    [calibration_texts[i] for i in order], documents=document_texts(texts))

    def reference(self, model, validation):
        validation.keras_probabilities = np.asarray(
            model.predict(tf.constant(validation.texts), batch_size=256, verbose=0))
        validation.keras_document_probabilities = predict_documents(model, validation.documents)
        return self.figures(validation, validation.keras_probabilities)

    def probe_inputs(self, validation):
        # "texts" for runtimes that tokenize the raw text themselves; "documents" to read whole.
        return {INPUT_NAME: validation.token_ids, "texts": np.array(validation.texts, dtype=str),
                "documents": np.array(validation.documents, dtype=str)}

    def validation_examples(self, validation):
        return len(validation.texts)

    # === Graphs ===

    def serving_graph(self, model, validation, scratch):
        tokenizer = model.preprocessor.tokenizer
        vocabulary_file = scratch / "vocabulary" / "vocabulary.txt"
        vocabulary_file.parent.mkdir(parents=True, exist_ok=True)
        vocabulary_file.write_text("\n".join(tokenizer.vocabulary), encoding="utf-8")
        sequence_length = model.sequence_length
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(vocabulary_file), key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=reference.OOV_ID,
        )
        target = RuntimeTarget(batch_size=None)

        def outputs(token_ids):
            probabilities = self.forward(model, token_ids, target)
            return {OUTPUT_NAME: probabilities, **self.decisions(model, probabilities)}

        def whole_token_ids(text):
            words = tokenizer.split_words(text)
            return tf.ragged.map_flat_values(lambda w: tf.cast(table.lookup(w), tf.int32), words)

        def serve_text(text):
            return outputs(whole_token_ids(text).to_tensor(default_value=reference.PAD_ID,
                                                           shape=[None, sequence_length]))

        def serve_documents(text):
            windows, owners = document_windows(whole_token_ids(text), sequence_length, MAX_WINDOWS)
            probabilities = self.forward(model, windows, target)
            return {OUTPUT_NAME: pool_windows(probabilities, owners, tf.shape(text)[0])}

        texts = validation.texts[:8] if validation is not None else []
        return Graph(
            endpoints={
                TEXT_SIGNATURE: Endpoint(serve_text, [tf.TensorSpec([None], tf.string, name="text")]),
                TOKEN_IDS_SIGNATURE: Endpoint(outputs, [tf.TensorSpec([None, sequence_length], tf.int32,
                                                                      name=INPUT_NAME)]),
                DOCUMENTS_SIGNATURE: Endpoint(serve_documents, [tf.TensorSpec([None], tf.string, name="text")]),
            },
            tracked=[token_id_model(model), table],
            # Batch sizes 1 and len(texts): TF Serving warms each shape it sees.
            examples={TEXT_SIGNATURE: [{"text": tf.constant(texts[:1])}, {"text": tf.constant(texts)}]} if texts else {},
        )

    def decisions(self, model, probabilities):
        """What a server answers besides the probabilities: the best class's id and name."""
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"class_id": class_id, "label": tf.gather(tf.constant(model.class_names, dtype=tf.string), class_id)}

    def serving_outputs(self, signatures, validation):
        """Both signatures on the validation data; the raw-string one is the reference runtime."""
        return {
            "text": {OUTPUT_NAME: _call_in_batches(signatures[TEXT_SIGNATURE], "text", tf.constant(validation.texts)),
                     DOCUMENT_OUTPUT: _call_in_batches(signatures[DOCUMENTS_SIGNATURE], "text",
                                                       tf.constant(validation.documents), batch_size=4)},
            "token_ids": {OUTPUT_NAME: _call_in_batches(signatures[TOKEN_IDS_SIGNATURE], INPUT_NAME,
                                                        tf.constant(validation.token_ids))},
        }

    def runtime_graph(self, model, target, options):
        length = None if target.any_length else model.sequence_length
        signature = [tf.TensorSpec([target.batch_size, length], tf.int32, name=INPUT_NAME)]
        if target.features_input:  # the format writes the backbone; the graph is the head
            width = model.backbone.output.shape[-1]
            signature.append(tf.TensorSpec([target.batch_size, width], tf.float32, name=FEATURES_NAME))
            endpoint = Endpoint(lambda token_ids, features: {OUTPUT_NAME: model.head(features, token_ids)}, signature)
        else:
            endpoint = Endpoint(lambda token_ids: {OUTPUT_NAME: self.forward(model, token_ids, target)}, signature)
        return Graph(
            endpoints={RUNTIME_SIGNATURE: endpoint},
            tracked=[token_id_model(model)],
        )

    def forward(self, model, token_ids, target):
        """Probabilities for int32 token ids: the backbone as its recipe traces it for `target`, then the head."""
        return model.head(recipe_for(model.backbone).features(model.backbone, token_ids, target), token_ids)

    def runtime_description(self, model, options):
        return {"labels": list(model.class_names), "tokenizer": model.preprocessor.reference().to_dict()}

    def calibration_inputs(self, model, validation):
        token_ids = with_full_windows(model.preprocessor.reference().encode(validation.calibration_texts))
        return [{INPUT_NAME: row[np.newaxis]} for row in token_ids]

    # === Validation ===

    def check_runtime_file(self, path, validation):
        """The ids the sidecar's tokenizer gives must be the ones validated on."""
        ids = ReferenceWordTokenizer.from_json(sidecar_path(path)).encode(validation.texts)
        if not np.array_equal(ids, validation.token_ids):
            raise ExportError(f"{path.name}: the sidecar tokenizer's ids differ from the model's")

    def figures(self, validation, probabilities, reference_probabilities=None):
        """Differences from Keras (or `reference_probabilities`), label agreement, accuracy."""
        reference_probabilities = (validation.keras_probabilities if reference_probabilities is None
                                   else reference_probabilities)
        return validate.compare(reference_probabilities, probabilities, validation.labels)

    def compare(self, validation, key, outputs, exact):
        figures = None
        for runtime, runtime_outputs in outputs.items():
            if "ids_exact" in runtime_outputs:
                continue
            runtime_figures = self.figures(validation, runtime_outputs[OUTPUT_NAME])
            label = f"{key} ({runtime})"
            self._require_parity(label, runtime_figures, exact)
            if PADDED_TO_LONGEST in runtime_outputs:  # a file that takes ids of any length, run as `predict` runs it
                trimmed = self.figures(validation, runtime_outputs[PADDED_TO_LONGEST])
                self._require_parity(f"{label}, each batch padded to its longest text", trimmed, exact)
                runtime_figures["max_abs_diff_padded_to_longest"] = trimmed["max_abs_diff"]
            if DOCUMENT_OUTPUT in runtime_outputs:
                runtime_figures["documents_max_abs_diff"] = self._compare_documents(
                    validation, f"{label}, long documents", runtime_outputs[DOCUMENT_OUTPUT], exact)
            if figures is None:
                figures = dict(runtime=runtime, **runtime_figures)
            else:
                figures[runtime] = runtime_figures
        for runtime, runtime_outputs in outputs.items():
            if "ids_exact" in runtime_outputs:
                figures[runtime] = self._compare_self_tokenizing(validation, key, runtime, runtime_outputs,
                                                                 outputs[runtime_outputs["same_kernels_as"]], exact)
        return figures

    @staticmethod
    def _require_parity(label, figures, exact):
        if exact:
            validate.require_float32_parity(label, figures)
        elif figures["has_nan"]:
            raise ParityError(f"{label}: NaN in the outputs on validation examples")

    def _compare_documents(self, validation, label, probabilities, exact):
        """Max |difference| from Keras's `predict_documents` on `validation.documents` (float32: within tolerance)."""
        reference_probabilities = validation.keras_document_probabilities
        probabilities = np.asarray(probabilities, np.float64)
        if probabilities.shape != reference_probabilities.shape:
            raise ParityError(f"{label}: output shape {probabilities.shape} != Keras's {reference_probabilities.shape}")
        difference = float(np.max(np.abs(probabilities - reference_probabilities)))
        if np.isnan(probabilities).any():
            raise ParityError(f"{label}: NaN in the outputs")
        if exact and difference > validate.FLOAT32_TOLERANCE:
            raise ParityError(f"{label}: max |probability - Keras| = {difference:.3g} on {len(probabilities)} "
                              f"documents exceeds {validate.FLOAT32_TOLERANCE:g}")
        return difference

    def _compare_self_tokenizing(self, validation, key, runtime, runtime_outputs, runner_outputs, exact):
        """A runtime that tokenizes the raw text itself, against zoo's runner on the same file and kernels.

        Where its tokenizer's ids are zoo's (`ids_exact`) it must give the
        runner's labels, and for float32 Keras's labels and the runner's
        scores within `MEDIAPIPE_TOLERANCE`; otherwise its figures are reported.
        """
        scores = runtime_outputs[OUTPUT_NAME]
        figures = self.figures(validation, scores)
        versus_runner = self.figures(validation, scores, runner_outputs[OUTPUT_NAME])
        ids_exact = bool(runtime_outputs["ids_exact"])
        figures.update(ids_exact=ids_exact, max_abs_diff_vs_runner=versus_runner["max_abs_diff"],
                       label_agreement_vs_runner=versus_runner["label_agreement"])
        if ids_exact:
            label = f"{key} ({runtime})"
            if versus_runner["label_agreement"] < 1.0:
                raise ParityError(f"{label}: labels differ from zoo's runner on "
                                  f"{1 - versus_runner['label_agreement']:.1%} of the validation examples")
            if exact:
                if figures["label_agreement"] < 1.0:
                    raise ParityError(f"{label}: labels differ from Keras on "
                                      f"{1 - figures['label_agreement']:.1%} of the validation examples")
                if versus_runner["max_abs_diff"] > validate.MEDIAPIPE_TOLERANCE:
                    raise ParityError(f"{label}: max |score - zoo runner| = {versus_runner['max_abs_diff']:.3g} "
                                      f"exceeds {validate.MEDIAPIPE_TOLERANCE:g}")
        return figures

    # === Reports ===

    def manifest_fields(self, model, options):
        tokenizer = model.preprocessor.tokenizer
        return {
            "task": self.name,
            "labels": list(model.class_names),
            "sequence_length": model.sequence_length,
            "tokenizer": {
                "type": "word",
                "lower": tokenizer.lower,
                "punctuation": tokenizer.punctuation,
                "vocabulary_size": tokenizer.vocabulary_size(),
                "vocabulary_sha256": validate.text_sha256("\n".join(tokenizer.vocabulary)),
            },
        }

    # The score `figures` report against the labels: its key and its column in the table.
    SCORE, SCORE_COLUMN = "accuracy", "acc"

    def format_table(self, parity):
        """Fixed-width parity table: each artifact's reference runtime, then its other runtimes."""
        lines = [f"{'artifact':<30}{'runtime':<11}{'max|Δ|':>10}{'mean|Δ|':>10}{'agree':>8}{self.SCORE_COLUMN:>8}"
                 f"{'Δ' + self.SCORE_COLUMN:>8}{'size':>10}"]
        inexact = False
        for artifact, figures in parity.items():
            for index, (runtime, row) in enumerate(validate.runtime_rows(figures)):
                accuracy, change = row.get(self.SCORE), row.get(f"{self.SCORE}_change")
                lines.append(
                    f"{artifact if index == 0 else '':<30}{runtime:<11}{row['max_abs_diff']:>10.2e}"
                    f"{row['mean_abs_diff']:>10.2e}{row['label_agreement']:>8.2%}"
                    f"{'' if accuracy is None else format(accuracy, '.2%'):>8}"
                    f"{'' if change is None else format(change * 100, '+.2f'):>8}"
                    f"{validate.format_size(row.get('bytes')) if index == 0 else '':>10}"
                )
                inexact = inexact or row.get("ids_exact") is False
        if inexact:
            lines.append("mediapipe: its regex tokenizer's ids differ from zoo's on some texts (it does not lowercase "
                         "and cannot keep punctuation): train with lower=False, punctuation='delimit' for exact ids")
        return "\n".join(lines)


def token_id_model(classifier):
    """The classifier without its preprocessor: token ids in, probabilities out.

    A new Functional model over the same layers (weights shared), so neither
    the tokenizer's lookup table nor its string ops reach a converter.
    """
    return keras.Model(classifier.inputs, classifier.outputs, name=f"{classifier.name}_token_ids")


def with_full_windows(token_ids, share=0.1):
    """Calibration rows plus `share` as many rows that fill the whole window.

    Short texts are padded at the end, so over a calibration set of short
    texts a backward RNN's first steps only ever see padding: their
    activations calibrate to a range near zero, and the requantization scale
    of the next matmul/add falls outside what XNNPACK accepts (bilstm:
    398x where XNNPACK's limit is 256, and an add's input at 1.7e-6 of its
    output scale): "failed to create XNNPACK runtime". A long text a user
    sends fills every step, so calibrate on such rows too; they are the same
    texts' ids run together, cut at the window's length.

    Args:
        token_ids: int array `[n, sequence_length]`, id 0 is padding.
        share: how many full-window rows to add, as a fraction of `n`.
    """
    token_ids = np.asarray(token_ids, np.int32)
    sequence_length = token_ids.shape[1]
    stream = token_ids[token_ids != 0]  # row by row, padding dropped
    count = min(max(1, round(share * len(token_ids))), len(stream) // sequence_length)
    windows = stream[: count * sequence_length].reshape(count, sequence_length)
    return np.concatenate([token_ids, windows])


def document_texts(texts, sizes=(1, 3, 10, 30, 100, 300), count=12):
    """`count` long texts, each `sizes[i]` consecutive `texts` joined by spaces: from one window to past
    `MAX_WINDOWS` of them (where the windows start sampling the text)."""
    documents, start = [], 0
    for index in range(count):
        size = sizes[index % len(sizes)]
        documents.append(" ".join(texts[(start + i) % len(texts)] for i in range(size)))
        start += size
    return documents


def _call_in_batches(signature, input_name, inputs, batch_size=256):
    outputs = [
        signature(**{input_name: inputs[start : start + batch_size]})[OUTPUT_NAME].numpy()
        for start in range(0, int(inputs.shape[0]), batch_size)
    ]
    return np.concatenate(outputs)
