"""How a `TextClassifier` exports: its graphs per format, validation data and parity rules.

- SavedModel: `serving_default` takes raw strings (`text` string `[None]`),
  tokenized in the graph with the classifier's own rules
  (`WordTokenizer.split_words`) and its vocabulary as the asset
  `assets/vocabulary.txt` (core TF ops only, so a stock TF Serving binary
  loads it); `predict_token_ids` takes int32 `[None, sequence_length]`. Both
  return `probabilities`, `class_id`, `label`.
- LiteRT: int32 `token_ids` `[1, sequence_length]` -> `probabilities`,
  builtin ops only. Per-architecture recipes (`litert_conversion_model`,
  `LITERT_INT8_FLOAT_OPS`): LSTMs as TFLite's fused sequence op, other
  recurrent layers unrolled, the transformer's attention kept in float32 in
  the int8 file. `model.batch32.tflite` is the float32 file with a static
  batch of 32 for servers (a batch-1 file takes 32 texts as 32 invokes),
  its LSTMs unrolled as well (XNNPACK then runs their matmuls at batch 32).
- ONNX: the same token-id graph with a dynamic batch.

Every file is checked on the validation split against Keras: float32
artifacts within `validate.FLOAT32_TOLERANCE` of Keras's probabilities, on
every runtime; quantized ones report label agreement and accuracy change.
"""

import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo.export import fused_rnn, validate
from zoo.export.errors import ExportError, ParityError
from zoo.export.formats.saved_model import SavedModelGraph
from zoo.models.transformer import TransformerBackbone
from zoo.preprocessing import reference
from zoo.preprocessing.reference import ReferenceWordTokenizer
from zoo.runtime.sidecar import SIDECAR_FORMAT, sidecar_path

CALIBRATION_EXAMPLES = 200
INPUT_NAME = "token_ids"
OUTPUT_NAME = "probabilities"

# Ops the transformer's full-int8 LiteRT file keeps in float32 (left out of
# quantization); only its matmuls, embedding gathers and reshapes are int8.
# All-int8, that file ran far slower than float32 under XNNPACK
# (benchmarks/README.md, "Measurements behind choices in the code").
LITERT_INT8_FLOAT_OPS = {
    TransformerBackbone: (
        "BATCH_MATMUL", "SOFTMAX", "MEAN", "SQUARED_DIFFERENCE", "RSQRT", "DIV", "SELECT_V2", "SUM", "MAXIMUM",
        "TRANSPOSE", "MUL", "ADD",
    ),
}


@dataclasses.dataclass
class ClassifierValidation:
    texts: list
    labels: object  # int array, or None for unlabeled texts
    token_ids: np.ndarray
    calibration_texts: list
    keras_probabilities: np.ndarray = None


class TextClassifierExport:
    TASK = "text-classification"
    DEFAULT_FORMATS = ("saved_model", "tflite", "onnx")
    QUANTIZATIONS = ("float16", "dynamic_int8", "int8", "batch32")
    DEFAULT_QUANTIZATIONS = QUANTIZATIONS
    # Variants whose outputs must match Keras as float32 does (float32 weights, another static batch).
    FLOAT32_VARIANTS = ("float32", "batch32")
    LITERT_SIGNATURES = ("serving_default",)
    # Runtimes apps use, run on every file of a format besides zoo's own.
    APP_RUNTIMES = {"tflite": ("mediapipe",)}
    TEXT_SIGNATURE = "serving_default"
    TOKEN_IDS_SIGNATURE = "predict_token_ids"

    # === Arguments and data ===

    def check_model(self, model, options):
        if options:
            raise ExportError(f"{model.name}: {', '.join(sorted(options))} apply to causal LMs only")
        if getattr(model, "preprocessor", None) is None:
            raise ExportError(f"{model.name}: the model has no preprocessor (tokenizer) attached; zoo exports take text")
        if not model.preprocessor.tokenizer.is_adapted:
            raise ExportError(f"{model.name}: the tokenizer has no vocabulary yet; adapt and train the model first")

    def validation_set(self, model, validation_data, calibration_texts, trained_split, **options):
        """Held-out texts (and labels) to validate on, plus training texts to calibrate int8 on.

        Default: the split the model was trained against (`trained_split`),
        else rt-polarity's seeded validation split.
        """
        from zoo.data import TextDataset, load_texts

        train = None
        if validation_data is None:
            if trained_split is not None:
                train, validation_data = trained_split
            else:
                dataset = load_texts()
                if list(dataset.class_names) != list(model.class_names):
                    raise ExportError(
                        f"validation_data is required: the model's classes {list(model.class_names)} are not "
                        f"the default dataset's {list(dataset.class_names)}"
                    )
                train, validation_data = dataset.split()
        if isinstance(validation_data, TextDataset):
            texts, labels = list(validation_data.texts), np.asarray(validation_data.labels)
        elif isinstance(validation_data, tuple) and len(validation_data) == 2:
            texts, labels = list(validation_data[0]), np.asarray(validation_data[1])
        else:
            texts, labels = list(validation_data), None
        if not texts or not all(isinstance(text, str) for text in texts):
            raise ExportError("validation_data must hold at least one text, and only str texts")
        if calibration_texts is None:
            # Calibrate on training text when we know it; else on the validation
            # texts (their labels are never used for calibration).
            calibration_texts = train.texts if train is not None else texts
        order = np.random.default_rng(0).permutation(len(calibration_texts))[:CALIBRATION_EXAMPLES]
        return ClassifierValidation(texts, labels, model.preprocessor.reference().encode(texts),
                                    [calibration_texts[i] for i in order])

    def reference_figures(self, job):
        """Keras's outputs on the validation texts, kept for every comparison."""
        validation = job.validation
        validation.keras_probabilities = np.asarray(
            job.model.predict(tf.constant(validation.texts), batch_size=256, verbose=0))
        return validate.compare(validation.keras_probabilities, validation.keras_probabilities, validation.labels)

    def runtime_inputs(self, job):
        """What `zoo.runtime.validation_probe` feeds a LiteRT or ONNX file: the sidecar tokenizer's ids."""
        return {INPUT_NAME: job.validation.token_ids, "texts": np.array(job.validation.texts, dtype=str)}

    # === Graphs ===

    def token_id_model(self, classifier):
        """The classifier without its preprocessor: token ids at its window in, probabilities out.

        A new Functional model over the same layers (weights shared), so neither
        the tokenizer's lookup table nor its string ops reach a converter. The
        backbone takes any length; this model fixes the one the export traces.
        The backbone's own layers are laid on that input (not the backbone as
        one nested model): the SavedModel writer traces every nested model's
        default signature, and unrolled RNNs cannot trace an unknown length.
        """
        token_ids = keras.Input(shape=(classifier.sequence_length,), dtype="int32", name=INPUT_NAME)
        backbone = keras.models.clone_model(classifier.backbone, input_tensors=token_ids,
                                            clone_function=lambda layer: layer)
        outputs = classifier.head(backbone.output, token_ids)
        return keras.Model(token_ids, outputs, name=f"{classifier.name}_token_ids")

    def token_ids_endpoint(self, classifier, batch_size):
        """`(function, input_signature)`: int32 `[batch_size, sequence_length]` -> probabilities."""
        model = self.token_id_model(classifier)
        signature = [tf.TensorSpec([batch_size, classifier.sequence_length], tf.int32, name=INPUT_NAME)]
        return (lambda token_ids: {OUTPUT_NAME: model(token_ids, training=False)}), signature

    def saved_model_graph(self, job):
        classifier = job.model
        vocabulary_file = job.scratch / "vocabulary" / "vocabulary.txt"
        vocabulary_file.parent.mkdir(exist_ok=True)
        vocabulary_file.write_text("\n".join(classifier.preprocessor.tokenizer.vocabulary), encoding="utf-8")
        tokenizer = classifier.preprocessor.tokenizer
        sequence_length = classifier.sequence_length
        model = self.token_id_model(classifier)
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(vocabulary_file), key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=reference.OOV_ID,
        )
        class_names = tf.constant(classifier.class_names, dtype=tf.string)

        def outputs(token_ids):
            probabilities = model(token_ids, training=False)
            class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {OUTPUT_NAME: probabilities, "class_id": class_id, "label": tf.gather(class_names, class_id)}

        def serve_text(text):
            words = tokenizer.split_words(text)
            token_ids = tf.ragged.map_flat_values(lambda w: tf.cast(table.lookup(w), tf.int32), words)
            return outputs(token_ids.to_tensor(default_value=reference.PAD_ID, shape=[None, sequence_length]))

        texts = job.validation.texts[:8]
        return SavedModelGraph(
            endpoints=[
                (self.TEXT_SIGNATURE, serve_text, [tf.TensorSpec([None], tf.string, name="text")]),
                (self.TOKEN_IDS_SIGNATURE, outputs,
                 [tf.TensorSpec([None, sequence_length], tf.int32, name=INPUT_NAME)]),
            ],
            tracked=[model, table],
            # Batch sizes 1 and len(texts): TF Serving warms each shape it sees.
            warmup_signature=self.TEXT_SIGNATURE,
            warmup_batches=[{"text": tf.constant(texts[:1])}, {"text": tf.constant(texts)}],
        )

    def saved_model_outputs(self, job, loaded):
        """Both signatures on the validation data; the raw-string one is the reference runtime."""
        validation = job.validation
        return {
            "text": {OUTPUT_NAME: _call_in_batches(loaded.signatures[self.TEXT_SIGNATURE], "text",
                                                   tf.constant(validation.texts))},
            "token_ids": {OUTPUT_NAME: _call_in_batches(loaded.signatures[self.TOKEN_IDS_SIGNATURE], INPUT_NAME,
                                                        tf.constant(validation.token_ids))},
        }

    def litert_conversion_model(self, job, variant):
        """The converter's input: a SavedModel with one `[1, sequence_length]` int32 signature
        (`[32, sequence_length]` for the "batch32" file).

        LSTMs become TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM for float
        files (`fused_rnn`; not for int8 weights: the fused op's reset row
        would ruin the kernel's quantization scale). Other recurrent layers
        are unrolled over the fixed sequence length: TFLite has no fused GRU
        and the converter emits no fused SimpleRNN, so the other choice is a
        WHILE loop (slower, benchmarks/README.md), and full-int8 calibration
        needs unrolled ops (TFLite's calibrator segfaults logging WHILE
        outputs, tensorflow#75140).
        """
        from zoo.export.formats.litert import BATCH_SIZES

        classifier = job.model
        # The batch32 file is unrolled too: TFLite's fused LSTM kernel, which XNNPACK does not take, ran
        # batch 32 at 4.9-11x ONNX Runtime's native LSTM; unrolled, its matmuls are XNNPACK's at batch 32.
        fused = variant in ("float32", "float16") and fused_rnn.can_fuse(classifier)
        batch_size = BATCH_SIZES.get(variant, 1)
        directory = job.scratch / (f"litert_saved_model_{'fused' if fused else 'unrolled'}_batch{batch_size}")
        if not directory.exists():
            self.write_conversion_saved_model(classifier, directory, fused=fused, batch_size=batch_size)
        return directory

    def write_conversion_saved_model(self, classifier, directory, fused=False, batch_size=1):
        """SavedModel with one fixed-shape signature: recurrent layers fused, or else unrolled."""
        from zoo.export.archive import ExportArchive

        model = self.token_id_model(classifier)
        function, signature = self.token_ids_endpoint(classifier, batch_size)
        if fused:
            function = lambda token_ids: {OUTPUT_NAME: fused_rnn.fused_forward(classifier, token_ids)}  # noqa: E731
        archive = ExportArchive()
        archive.track(model)
        with contextlib.nullcontext() if fused else _unrolled(model):  # around write_out too: it traces
            archive.add_endpoint("serving_default", function, input_signature=signature)
            archive.write_out(str(directory), verbose=False)
        return directory

    def litert_converter_options(self, job, variant):
        """The fused float16 LSTM: its state variables stay plain float32 constants.

        By default the converter stores their zero initial values as float16
        constants behind DEQUANTIZE ops; ai_edge_litert runs that, but
        MediaPipe's TextClassifier refuses to load it ("Output tensor ... to op
        DEQUANTIZE is a variable"). The older dynamic-range quantizer keeps
        them float32 and the weights float16 (export validation runs both).
        """
        if variant == "float16" and fused_rnn.can_fuse(job.model):
            return {"experimental_new_dynamic_range_quantizer": False}
        return {}

    def litert_int8_float_ops(self, classifier):
        return next((ops for backbone, ops in LITERT_INT8_FLOAT_OPS.items()
                     if isinstance(classifier.backbone, backbone)), ())

    def litert_file_metadata(self, job, variant, flatbuffer):
        """TFLite model metadata, so MediaPipe Tasks' TextClassifier loads the file with no sidecar
        (not on a batch variant: that TextClassifier takes one `[1, L]` input)."""
        from zoo.export import tflite_metadata
        from zoo.export.formats.litert import BATCH_SIZES

        if variant in BATCH_SIZES:
            return flatbuffer

        classifier = job.model
        tokenizer = classifier.preprocessor.tokenizer
        exact = ("exactly" if tokenizer.mediapipe_exact
                 else "not exactly (lower=False with punctuation 'delimit' or 'keep' would)")
        return tflite_metadata.add_text_classifier_metadata(
            flatbuffer,
            name=job.name,
            version=str(job.version),
            description=(f"zoo {self.TASK} model {job.name} ({type(classifier.backbone).__name__}, {variant}); "
                         f"MediaPipe's regex tokenizer reproduces zoo's token ids {exact}"),
            vocabulary=tokenizer.vocabulary,
            labels=list(classifier.class_names),
            delimiter_pattern=reference.mediapipe_delimiter_pattern(tokenizer.punctuation),
        )

    def litert_artifact_fields(self, job, flatbuffer):
        from zoo.export import tflite_metadata

        if tflite_metadata.metadata_buffer(flatbuffer) is None:  # a batch variant
            return {}

        return {"metadata": tflite_metadata.read_metadata(flatbuffer),
                "mediapipe": {"ids_exact": job.model.preprocessor.tokenizer.mediapipe_exact,
                              "delimiter_pattern": reference.mediapipe_delimiter_pattern(
                                  job.model.preprocessor.tokenizer.punctuation)}}

    def litert_calibration_inputs(self, job):
        token_ids = with_full_windows(job.model.preprocessor.reference().encode(job.validation.calibration_texts))
        return [{INPUT_NAME: row[np.newaxis]} for row in token_ids]

    # === Files, validation, reports ===

    def sidecar(self, job, variant, filename, signatures):
        classifier = job.model
        return {
            "format": SIDECAR_FORMAT,
            "task": self.TASK,
            "model": job.name,
            "file": filename,
            "quantization": variant,
            "signatures": signatures,
            "labels": list(classifier.class_names),
            "tokenizer": classifier.preprocessor.reference().to_dict(),
        }

    def check_sidecar_tokenizer(self, job, path):
        """The ids the sidecar's tokenizer gives must be the ones validated on."""
        ids = ReferenceWordTokenizer.from_json(sidecar_path(path)).encode(job.validation.texts)
        if not np.array_equal(ids, job.validation.token_ids):
            raise ExportError(f"{path.name}: the sidecar tokenizer's ids differ from the model's")

    def compare(self, job, key, variant, outputs):
        """Figures per runtime (the first at the top level, the others nested); float32 must match Keras.

        MediaPipe tokenizes the raw texts itself: where its rules are zoo's
        (`mediapipe_exact`) it must give zoo's runner's labels, and for float32
        its scores within `MEDIAPIPE_TOLERANCE`; otherwise its figures are reported.
        """
        validation = job.validation
        outputs = dict(outputs)
        mediapipe = outputs.pop("mediapipe", None)
        figures = None
        for runtime, runtime_outputs in outputs.items():
            runtime_figures = validate.compare(validation.keras_probabilities, runtime_outputs[OUTPUT_NAME],
                                               validation.labels)
            label = f"{key} ({runtime})"
            if variant in self.FLOAT32_VARIANTS:
                validate.require_float32_parity(label, runtime_figures)
            elif runtime_figures["has_nan"]:
                raise ParityError(f"{label}: NaN in the outputs on validation examples")
            if figures is None:
                figures = dict(runtime=runtime, **runtime_figures)
            else:
                figures[runtime] = runtime_figures
        if mediapipe is not None:
            figures["mediapipe"] = self._compare_mediapipe(job, key, variant, mediapipe[OUTPUT_NAME],
                                                           outputs["xnnpack"][OUTPUT_NAME])
        return figures

    def _compare_mediapipe(self, job, key, variant, scores, runner_probabilities):
        validation = job.validation
        exact = job.model.preprocessor.tokenizer.mediapipe_exact
        figures = validate.compare(validation.keras_probabilities, scores, validation.labels)
        versus_runner = validate.compare(runner_probabilities, scores)
        figures.update(ids_exact=exact, max_abs_diff_vs_runner=versus_runner["max_abs_diff"],
                       label_agreement_vs_runner=versus_runner["label_agreement"])
        if exact:
            label = f"{key} (mediapipe TextClassifier)"
            if versus_runner["label_agreement"] < 1.0:
                raise ParityError(f"{label}: labels differ from zoo's runner on "
                                  f"{1 - versus_runner['label_agreement']:.1%} of the validation examples")
            if variant == "float32":
                if figures["label_agreement"] < 1.0:
                    raise ParityError(f"{label}: labels differ from Keras on "
                                      f"{1 - figures['label_agreement']:.1%} of the validation examples")
                if versus_runner["max_abs_diff"] > validate.MEDIAPIPE_TOLERANCE:
                    raise ParityError(f"{label}: max |score - zoo runner| = {versus_runner['max_abs_diff']:.3g} "
                                      f"exceeds {validate.MEDIAPIPE_TOLERANCE:g}")
        return figures

    def manifest_fields(self, job):
        classifier = job.model
        tokenizer = classifier.preprocessor.tokenizer
        return {
            "task": self.TASK,
            "labels": list(classifier.class_names),
            "sequence_length": classifier.sequence_length,
            "tokenizer": {
                "type": "word",
                "lower": tokenizer.lower,
                "punctuation": tokenizer.punctuation,
                "vocabulary_size": tokenizer.vocabulary_size(),
                "vocabulary_sha256": validate.text_sha256("\n".join(tokenizer.vocabulary)),
            },
        }

    def validation_examples(self, job):
        return len(job.validation.texts)

    def format_table(self, parity):
        """Fixed-width parity table: each artifact's reference runtime, then its other runtimes."""
        lines = [f"{'artifact':<30}{'runtime':<11}{'max|Δ|':>10}{'mean|Δ|':>10}{'agree':>8}{'acc':>8}{'Δacc':>8}"
                 f"{'size':>10}"]
        inexact = False
        for artifact, figures in parity.items():
            runtimes = [(runtime, value) for runtime, value in figures.items() if isinstance(value, dict)]
            for index, (runtime, row) in enumerate([(figures.get("runtime", ""), figures)] + runtimes):
                accuracy, change = row.get("accuracy"), row.get("accuracy_change")
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


@contextlib.contextmanager
def _unrolled(model):
    """Trace every recurrent layer of `model` as unrolled steps."""
    recurrent = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.RNN)]
    saved = [(layer.unroll, layer.zero_output_for_mask) for layer in recurrent]
    try:
        for layer in recurrent:
            layer.unroll = True
            if layer.go_backwards:
                # Keras 3.15's unrolled rnn() zeroes masked outputs with the
                # mask in input order while the outputs are in (reversed)
                # processing order, so a Bidirectional layer's backward half
                # zeroes real steps and keeps padded ones (max |diff| 0.02).
                # zoo pads at the end, so a backward pass meets the padding
                # first and, without the zeroing, outputs the zeros it starts
                # from there: exactly what the WHILE loop gives.
                layer.zero_output_for_mask = False
        yield
    finally:
        for layer, (unroll, zero_output_for_mask) in zip(recurrent, saved):
            layer.unroll = unroll
            layer.zero_output_for_mask = zero_output_for_mask


def _call_in_batches(signature, input_name, inputs, batch_size=256):
    outputs = [
        signature(**{input_name: inputs[start : start + batch_size]})[OUTPUT_NAME].numpy()
        for start in range(0, int(inputs.shape[0]), batch_size)
    ]
    return np.concatenate(outputs)
