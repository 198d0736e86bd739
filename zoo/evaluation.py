"""Classification metrics.

Single-label: accuracy, per-class precision/recall/F1 and the confusion
matrix. Multi-label: micro and macro F1 with per-label precision/recall/F1 at
each label's decision threshold (and at 0.5 beside them), and the per-label
thresholds that maximize F1 on held-out scores.
"""

import dataclasses
import pathlib

import numpy as np

DEFAULT_THRESHOLD = 0.5


def labels_over_thresholds(scores, class_names, thresholds):
    """A multi-label prediction from one row of scores: `[(label, score), ...]`, every label whose
    score is at or above its own threshold, highest score first (the rule every model kind and runtime
    answers with)."""
    return sorted(((name, float(score)) for name, score, threshold in zip(class_names, scores, thresholds)
                   if score >= threshold), key=lambda pair: -pair[1])


@dataclasses.dataclass(frozen=True)
class ClassificationReport:
    class_names: tuple
    confusion: np.ndarray  # rows: true class, columns: predicted class

    @classmethod
    def from_predictions(cls, labels, predicted, class_names):
        size = len(class_names)
        confusion = np.zeros((size, size), dtype=np.int64)
        np.add.at(confusion, (np.asarray(labels), np.asarray(predicted)), 1)
        return cls(tuple(class_names), confusion)

    @property
    def accuracy(self):
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0

    def per_class(self):
        true_positives = np.diag(self.confusion)
        predicted = self.confusion.sum(axis=0)
        actual = self.confusion.sum(axis=1)
        precision, recall = _ratio(true_positives, predicted), _ratio(true_positives, actual)
        f1 = _f1(true_positives, predicted - true_positives, actual - true_positives)
        return {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.class_names, precision, recall, f1, actual)
        }

    def headline(self):
        return f"accuracy: {self.accuracy:.4f}"

    def to_dict(self):
        return {
            "accuracy": self.accuracy,
            "per_class": self.per_class(),
            "confusion_matrix": self.confusion.tolist(),
            "class_names": list(self.class_names),
        }

    def format(self):
        width = max(9, *(len(name) for name in self.class_names))
        lines = [f"accuracy {self.accuracy:.4f} on {int(self.confusion.sum())} examples", ""]
        lines.append(f"{'class':<{width}}  precision  recall     f1  support")
        for name, row in self.per_class().items():
            lines.append(
                f"{name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:.4f}  {row['support']:7d}"
            )
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        lines.append(" " * width + "  " + "  ".join(f"{name:>{width}}" for name in self.class_names))
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"{name:<{width}}  " + "  ".join(f"{count:>{width}d}" for count in row))
        return "\n".join(lines)


# A class (label) never predicted, or never present, scores 0, not NaN.


def _f1(true_positives, false_positives, false_negatives):
    """2TP / (2TP + FP + FN), 0 where there is nothing to score (no positive, none predicted)."""
    true_positives = np.asarray(true_positives, dtype=float)
    denominator = 2 * true_positives + false_positives + false_negatives
    return np.divide(2 * true_positives, denominator, out=np.zeros_like(true_positives), where=denominator > 0)


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=float)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=np.asarray(denominator) > 0)


@dataclasses.dataclass(frozen=True)
class MultiLabelReport:
    """Per-label counts of a multi-label classifier's decisions (label j is predicted where score >= threshold j).

    `at_default` holds the same figures at 0.5 for every label, to show what
    the chosen thresholds change. Micro F1 pools every (text, label) decision;
    macro F1 is the unweighted mean over labels, a label with no positive and
    no prediction counting 0 (scikit-learn's `zero_division=0`).
    """

    class_names: tuple
    thresholds: tuple
    true_positives: np.ndarray
    false_positives: np.ndarray
    false_negatives: np.ndarray
    examples: int
    at_default: "MultiLabelReport" = None

    @classmethod
    def from_scores(cls, labels, scores, class_names, thresholds=None):
        """Report on multi-hot `labels` `[n, labels]` and `scores` at `thresholds` (default 0.5), and at 0.5."""
        labels, scores = np.asarray(labels).astype(bool), np.asarray(scores)
        if labels.shape != scores.shape or labels.ndim != 2 or labels.shape[1] != len(class_names):
            raise ValueError(f"labels {labels.shape} and scores {scores.shape} must both be "
                             f"[examples, {len(class_names)}]")
        thresholds = np.full(len(class_names), DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds)
        at_default = None
        if not np.all(thresholds == DEFAULT_THRESHOLD):
            at_default = cls.from_scores(labels, scores, class_names)
        predicted = scores >= thresholds
        return cls(
            class_names=tuple(class_names),
            thresholds=tuple(float(t) for t in thresholds),
            true_positives=np.sum(predicted & labels, axis=0),
            false_positives=np.sum(predicted & ~labels, axis=0),
            false_negatives=np.sum(~predicted & labels, axis=0),
            examples=len(labels),
            at_default=at_default,
        )

    @property
    def micro_f1(self):
        return float(_f1(self.true_positives.sum(), self.false_positives.sum(), self.false_negatives.sum()))

    @property
    def macro_f1(self):
        return float(np.mean(_f1(self.true_positives, self.false_positives, self.false_negatives)))

    @property
    def micro_precision(self):
        return float(_ratio(self.true_positives.sum(), self.true_positives.sum() + self.false_positives.sum()))

    @property
    def micro_recall(self):
        return float(_ratio(self.true_positives.sum(), self.true_positives.sum() + self.false_negatives.sum()))

    def per_class(self):
        support = self.true_positives + self.false_negatives
        precision = _ratio(self.true_positives, self.true_positives + self.false_positives)
        recall = _ratio(self.true_positives, support)
        f1 = _f1(self.true_positives, self.false_positives, self.false_negatives)
        return {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "threshold": t}
            for name, p, r, f, s, t in zip(self.class_names, precision, recall, f1, support, self.thresholds)
        }

    def headline(self):
        line = f"micro-F1: {self.micro_f1:.4f}, macro-F1: {self.macro_f1:.4f}"
        if self.at_default is not None:
            line += f" (at 0.5: micro {self.at_default.micro_f1:.4f}, macro {self.at_default.macro_f1:.4f})"
        return line

    def to_dict(self):
        figures = {
            "micro_f1": self.micro_f1,
            "macro_f1": self.macro_f1,
            "micro_precision": self.micro_precision,
            "micro_recall": self.micro_recall,
            "examples": self.examples,
            "per_class": self.per_class(),
            "class_names": list(self.class_names),
            "thresholds": list(self.thresholds),
        }
        default = self.at_default or self
        figures["at_0.5"] = {"micro_f1": default.micro_f1, "macro_f1": default.macro_f1,
                             "per_class": {name: {key: row[key] for key in ("precision", "recall", "f1")}
                                           for name, row in default.per_class().items()}}
        return figures

    def format(self):
        width = max(9, *(len(name) for name in self.class_names))
        lines = [f"micro-F1 {self.micro_f1:.4f} (precision {self.micro_precision:.4f}, recall "
                 f"{self.micro_recall:.4f}), macro-F1 {self.macro_f1:.4f} on {self.examples} examples"]
        if self.at_default is not None:
            lines.append(f"at 0.5 for every label: micro-F1 {self.at_default.micro_f1:.4f}, "
                         f"macro-F1 {self.at_default.macro_f1:.4f}")
        lines += ["", f"{'label':<{width}}  threshold  precision  recall     f1  support"]
        for name, row in self.per_class().items():
            lines.append(f"{name:<{width}}  {row['threshold']:9.4f}  {row['precision']:9.4f}  {row['recall']:6.4f}  "
                         f"{row['f1']:.4f}  {row['support']:7d}")
        return "\n".join(lines)


def best_f1_thresholds(labels, scores, default=DEFAULT_THRESHOLD):
    """Per label, the threshold (predict where score >= it) that maximizes F1 on held-out `scores`.

    Cutting a label's texts sorted by score after each distinct score gives
    every F1 a threshold can reach; the threshold is placed midway between the
    lowest score kept and the highest score dropped (at the lowest score when
    every text is kept), so a new text scoring between two held-out ones is
    not decided by which of them it happens to equal. Ties in F1 go to the
    highest threshold (fewer labels predicted when the held-out texts cannot
    tell the cuts apart). A label with no positive held-out text keeps
    `default`: F1 is 0 (or undefined) at every threshold, so the held-out
    texts say nothing about where it goes.

    Args:
        labels: multi-hot `[examples, labels]`.
        scores: `[examples, labels]`, e.g. sigmoid outputs (any real scores:
            `default` is then the untuned decision value).

    Example:
    >>> best_f1_thresholds([[1], [0], [0]], [[0.9], [0.6], [0.3]])
    [0.75]
    """
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must both be [examples, labels]")
    thresholds = []
    for positive, score in zip(labels.T, scores.T):
        if not positive.any():
            thresholds.append(float(default))
            continue
        order = np.argsort(-score, kind="stable")
        score, positive = score[order], positive[order]
        # Cut after the last of each run of equal scores: texts scoring the same are decided together.
        cuts = np.flatnonzero(np.append(score[1:] != score[:-1], True))
        true_positives = np.cumsum(positive)[cuts]
        kept = cuts + 1
        f1 = 2 * true_positives / (kept + positive.sum())
        best = cuts[int(np.argmax(f1))]  # argmax takes the first maximum: the highest threshold
        below = score[best + 1] if best + 1 < len(score) else score[best]
        thresholds.append(float((score[best] + below) / 2))
    return thresholds


def evaluate_classifier(classifier, dataset, batch_size=128):
    """Run `classifier` over a `zoo.data.TextDataset` and build the report its labels call for.

    Multi-hot labels (a multi-label dataset) give a `MultiLabelReport` at the
    classifier's `thresholds`; class ids give a `ClassificationReport`.
    """
    scores = classifier.predict(dataset.to_tf_dataset(batch_size).map(lambda text, label: text), verbose=0)
    if dataset.multi_label:
        return MultiLabelReport.from_scores(dataset.labels, scores, classifier.class_names, classifier.thresholds)
    return ClassificationReport.from_predictions(dataset.labels, np.argmax(scores, axis=-1), classifier.class_names)


def write_confusion_png(report, path):
    """The confusion matrix of a single-label `ClassificationReport` as a PNG at `path` (written whole)."""
    if not isinstance(report, ClassificationReport):
        raise ValueError(f"{path}: a confusion matrix is a single-label report's; this model is multi-label "
                         "(its report has per-label counts)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError(f"{path}: drawing the confusion matrix needs matplotlib (pip install matplotlib, or "
                         "zoo[bench])") from None
    from zoo.saving import write_atomically

    size = len(report.class_names)
    figure, axes = plt.subplots(figsize=(2.5 + 0.6 * size, 2 + 0.6 * size))
    image = axes.imshow(report.confusion, cmap="Blues")
    axes.set_xticks(range(size), report.class_names, rotation=45, ha="right")
    axes.set_yticks(range(size), report.class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {report.accuracy:.1%} on {int(report.confusion.sum())} examples")
    dark = report.confusion.max() / 2
    for row in range(size):
        for column in range(size):
            count = int(report.confusion[row, column])
            axes.text(column, row, str(count), ha="center", va="center",
                      color="white" if count > dark else "black", fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    write_atomically(pathlib.Path(path), lambda temporary: figure.savefig(temporary, dpi=120, format="png"))
    plt.close(figure)
    return pathlib.Path(path)

