"""`TextClassifierRunner`: raw strings in, class probabilities out, through an exported file."""

import pathlib

import numpy as np

from zoo.preprocessing.reference import ReferenceWordTokenizer
from zoo.runtime import backends, documents, registry
from zoo.runtime import verify as verification
from zoo.runtime.sidecar import check_one_tensor_signature, check_word_tokenizer_fields, read_sidecar, sidecar_path

TASK = "text-classification"
# `probe`'s second output for a file that takes ids of any length: each batch padded only to its longest text.
PADDED_TO_LONGEST = "probabilities_padded_to_longest"
# The probe's output on validation documents read whole (`predict_documents`), when asked for them.
DOCUMENT_OUTPUT = "document_probabilities"


@registry.register_runner(TASK, (".tflite", ".onnx"))
class TextClassifierRunner:
    """Classify raw strings with a zoo LiteRT (`.tflite`) or ONNX (`.onnx`) file.

    Tokenization is pure Python (`zoo.preprocessing.reference`, rules and
    vocabulary from the sidecar), the same code a phone app ports.

    Args:
        model_path: the `.tflite` or `.onnx` file; its sidecar is `<same name>.json`.
        num_threads: inference threads.
        delegates: LiteRT only. False runs the plain builtin kernels with no
            delegate at all (zoo's export reference); True lets LiteRT apply
            its default XNNPACK delegate, as an app would.
        verify: check the file and sidecar against the version's manifest
            (sha256) first; the sidecar is always checked against the
            file's tensor shapes.

    Safe to share between threads (a web back end's worker threads, say):
    the tokenizer is pure Python, an ONNX session runs concurrent calls itself,
    and a LiteRT file's interpreter runs one batch at a time under its lock,
    so every call returns its own texts' probabilities, exactly as alone.

    Example:
    >>> runner = TextClassifierRunner("saved_models/lstm_classifier/1/litert/model.tflite")
    >>> runner.predict_labels(["a gorgeous, witty, seductive movie."])
    [('pos', 0.91)]
    """

    task = TASK

    def __init__(self, model_path, num_threads=2, delegates=True, verify=True):
        self.model_path = pathlib.Path(model_path)
        backends.suffix_of(self.model_path)  # a clear error for a file of another kind, before its sidecar
        if verify:  # sha256 of the file and its sidecar, where they sit in an exported version
            verification.verify_model_file(self.model_path)
        self.spec = read_sidecar(self.model_path, self.task)
        runtime = None if delegates or self.model_path.suffix != ".tflite" else "builtin"
        self.model = backends.open_model(self.model_path, runtime, num_threads)
        verification.check_sidecar_against_model(self.spec, self.model, sidecar_path(self.model_path))
        self.tokenizer = ReferenceWordTokenizer.from_json(sidecar_path(self.model_path))
        self.class_names = list(self.spec["labels"])
        (self._signature_name, signature), = self.spec["signatures"].items()
        self._input_name = signature["inputs"][0]["name"]
        self._output_name = signature["outputs"][0]["name"]
        self._signature = self.model.signature(self._signature_name)
        self._batch_size = self.model.batch_size(self._signature_name, self._input_name)
        # A file whose time dimension is dynamic (zoo's ONNX files) takes each batch padded only to its
        # longest text: the same probabilities (checked at export) for less work.
        input_shape = self.model.signature_details(self._signature_name)["inputs"][self._input_name]
        self.any_length = input_shape[-1] is None

    def predict_token_ids(self, token_ids, trim_padding=True):
        """Probabilities `[n, num_classes]` for int32 ids `[n, sequence_length]`.

        `trim_padding=False` runs the ids padded to the whole window even where the file takes shorter ones.
        """
        probabilities = backends.run_in_batches(
            self._signature, token_ids, self._input_name, self._output_name, self._batch_size,
            any_length=trim_padding and self.any_length,
        )
        if probabilities is None:
            return np.zeros((0, len(self.class_names)), np.float32)
        return probabilities

    def predict(self, texts):
        """Probabilities `[len(texts), num_classes]` for raw texts (str, or UTF-8 bytes: invalid sequences read as U+FFFD)."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("predict() takes a list of strings, not one string")
        return self.predict_token_ids(self.tokenizer.encode(list(texts)))

    def predict_documents(self, texts, max_windows=documents.MAX_WINDOWS):
        """Probabilities `[len(texts), num_classes]` reading each text whole: windows of the file's length
        spread over its token sequence, their probabilities averaged (`zoo.runtime.documents`; Keras's
        `predict_documents` and the SavedModel's `serving_documents` give the same numbers, checked at
        export). A text that fits the window gets `predict`'s result; a longer one costs one prediction
        per window."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("predict_documents() takes a list of strings, not one string")
        texts = list(texts)
        windows, owners = documents.split_into_windows(self.tokenizer.encode_whole(texts),
                                                       self.tokenizer.sequence_length, max_windows)
        if not texts:
            return np.zeros((0, len(self.class_names)), np.float32)
        return documents.pool(self.predict_token_ids(windows), owners, len(texts))

    def predict_labels(self, texts):
        """`(class_name, probability)` for each text."""
        probabilities = self.predict(texts)
        best = probabilities.argmax(axis=-1)
        return [(self.class_names[i], float(row[i])) for i, row in zip(best, probabilities)]

    @classmethod
    def probe(cls, model_path, runtime, inputs):
        """Probabilities on validation inputs (`zoo.runtime.validation_probe`): the sidecar tokenizer's ids,
        or on runtime "mediapipe" the raw texts, which MediaPipe Tasks' TextClassifier tokenizes itself."""
        if runtime == "mediapipe":
            from zoo.runtime.mediapipe_runner import MediaPipeTextClassifier

            return {"probabilities": MediaPipeTextClassifier(model_path).scores([str(t) for t in inputs["texts"]])}
        runner = cls(model_path, delegates=runtime != "builtin")
        outputs = {"probabilities": runner.predict_token_ids(inputs["token_ids"], trim_padding=False)}
        if runner.any_length:  # and the way `predict` runs it: batches of similar length, padded to the longest
            outputs[PADDED_TO_LONGEST] = runner.predict_token_ids(inputs["token_ids"])
        if "documents" in inputs:
            outputs[DOCUMENT_OUTPUT] = runner.predict_documents([str(text) for text in inputs["documents"]])
        return outputs


@registry.sidecar_fields(TASK)
def check_sidecar(field, spec):
    check_one_tensor_signature(field, spec)
    check_word_tokenizer_fields(field, spec)


@registry.sidecar_fits_model(TASK)
def check_against_model(spec, shapes, sidecar):
    """The window the tokenizer pads to and the number of labels are the file's input and output sizes."""
    (signature,) = spec["signatures"].values()
    window, classes = signature["inputs"][0]["shape"][-1:], signature["outputs"][0]["shape"][-1:]
    verification.same_dimension(sidecar, "tokenizer.sequence_length", spec["tokenizer"]["sequence_length"], window,
                                "the model file takes {} token ids")
    verification.same_dimension(sidecar, "labels", len(spec["labels"]), classes, "the model file outputs {} classes",
                                "{} labels")
