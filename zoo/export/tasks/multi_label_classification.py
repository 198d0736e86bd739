"""How a `MultiLabelTextClassifier` exports: the text classifier's graphs and files, with its thresholds.

Everything a single-label classifier's export does (`text_classification`):
the same raw-text serving graph, runtime graph, tokenizer and files. What
differs: the scores are independent sigmoids, so a server answers
`predicted` (int32 `[n, labels]`, 1 where a score reaches its label's
threshold) instead of one class; the sidecar and manifest carry the
per-label `thresholds`; and the figures compare label sets: `label_agreement`
is the share of texts whose predicted set equals Keras's, `micro_f1` the
file's micro-F1 against the validation labels (and its change from Keras's).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from zoo.evaluation import MultiLabelReport
from zoo.export.tasks import register_task
from zoo.export.tasks.text_classification import ClassifierValidation, TextClassificationExport
from zoo.models.multi_label_text_classifier import TASK, MultiLabelTextClassifier


@dataclasses.dataclass
class MultiLabelValidation(ClassifierValidation):
    thresholds: np.ndarray = None
    class_names: list = None


@register_task(MultiLabelTextClassifier)
class MultiLabelClassificationExport(TextClassificationExport):
    name = TASK
    SCORE, SCORE_COLUMN = "micro_f1", "µF1"

    def validation_set(self, model, data, calibration_texts, trained_split, options):
        validation = super().validation_set(model, data, calibration_texts, trained_split, options)
        return MultiLabelValidation(**vars(validation), thresholds=np.asarray(model.thresholds, np.float32),
                                    class_names=list(model.class_names))

    def decisions(self, model, probabilities):
        """Each label's decision at its threshold: 1 where the score reaches it."""
        return {"predicted": tf.cast(probabilities >= tf.constant(model.thresholds, tf.float32), tf.int32)}

    def runtime_description(self, model, options):
        return dict(super().runtime_description(model, options), thresholds=list(model.thresholds))

    def figures(self, validation, probabilities, reference_probabilities=None):
        reference = validation.keras_probabilities if reference_probabilities is None else reference_probabilities
        reference, probabilities = np.asarray(reference, np.float64), np.asarray(probabilities, np.float64)
        difference = np.abs(probabilities - reference)
        predicted, expected = probabilities >= validation.thresholds, reference >= validation.thresholds
        figures = {
            "examples": len(probabilities),
            "has_nan": bool(np.isnan(probabilities).any()),
            "max_abs_diff": float(np.nanmax(difference)) if difference.size else 0.0,
            "mean_abs_diff": float(np.nanmean(difference)) if difference.size else 0.0,
            # A text agrees when its whole predicted label set is Keras's.
            "label_agreement": float(np.all(predicted == expected, axis=1).mean()),
        }
        if validation.labels is not None:
            def micro_f1(scores):
                return MultiLabelReport.from_scores(validation.labels, scores, validation.class_names,
                                                    validation.thresholds).micro_f1

            figures["micro_f1"] = micro_f1(probabilities)
            figures["micro_f1_change"] = figures["micro_f1"] - micro_f1(reference)
        return figures

    def manifest_fields(self, model, options):
        return dict(super().manifest_fields(model, options), thresholds=list(model.thresholds))
