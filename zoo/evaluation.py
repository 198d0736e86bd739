"""Classification metrics: accuracy, per-class precision/recall/F1, confusion."""

import dataclasses

import numpy as np


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
        true_positives = np.diag(self.confusion).astype(float)
        predicted = self.confusion.sum(axis=0)
        actual = self.confusion.sum(axis=1)
        # A class never predicted (or never present) scores 0, not NaN.
        precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
        recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives), where=actual > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        return {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.class_names, precision, recall, f1, actual)
        }

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


def evaluate_classifier(classifier, dataset, batch_size=128):
    """Run `classifier` over a `zoo.data.TextDataset` and build the report."""
    probabilities = classifier.predict(dataset.to_tf_dataset(batch_size).map(lambda text, label: text), verbose=0)
    return ClassificationReport.from_predictions(
        dataset.labels, np.argmax(probabilities, axis=-1), classifier.class_names
    )
