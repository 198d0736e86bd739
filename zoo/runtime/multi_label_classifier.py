"""`MultiLabelClassifierRunner`: raw strings in, every label over its threshold out, through an exported file."""

from zoo.evaluation import labels_over_thresholds
from zoo.runtime import registry
from zoo.runtime.sidecar import check_one_tensor_signature, check_word_tokenizer_fields
from zoo.runtime.text_classifier import TextClassifierRunner
from zoo.runtime.text_classifier import check_against_model as check_classifier_against_model

TASK = "multi-label-classification"


@registry.register_runner(TASK, (".tflite", ".onnx"))
class MultiLabelClassifierRunner(TextClassifierRunner):
    """Tag raw strings with a zoo multi-label LiteRT (`.tflite`) or ONNX (`.onnx`) file.

    As `TextClassifierRunner` (the same arguments, tokenizer and files); the
    scores are independent, one per label, and a label is predicted where its
    score reaches its threshold (from the sidecar: the ones chosen on the
    validation split at training). Safe to share between threads, as
    `TextClassifierRunner`.

    Example:
    >>> runner = MultiLabelClassifierRunner("saved_models/lstm_multi_label_classifier/1/litert/model.tflite")
    >>> runner.predict_labels(["o romeo, romeo"])
    [[('ROMEO', 0.91)]]
    """

    task = TASK

    def __init__(self, model_path, **options):
        super().__init__(model_path, **options)
        self.thresholds = [float(threshold) for threshold in self.spec["thresholds"]]

    def predict_labels(self, texts):
        """For each text, `[(label, score), ...]`: every label at or above its threshold, highest score first."""
        return [labels_over_thresholds(row, self.class_names, self.thresholds) for row in self.predict(texts)]


@registry.sidecar_fields(TASK)
def check_sidecar(field, spec):
    check_one_tensor_signature(field, spec)
    check_word_tokenizer_fields(field, spec)
    labels = len(spec["labels"])
    field.get("thresholds", lambda v: isinstance(v, list) and len(v) == labels and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1 for t in v),
        f"a list of {labels} numbers in [0, 1], one per label")


registry.sidecar_fits_model(TASK)(check_classifier_against_model)
