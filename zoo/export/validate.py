"""Parity of every exported artifact against the Keras model it came from."""

import numpy as np

from zoo.export.errors import ExportError

# float32 artifacts must match Keras this closely (max |Δ probability|).
FLOAT32_TOLERANCE = 1e-4


def compare(reference_probabilities, probabilities, labels=None):
    """Figures for one artifact: differences, label agreement, accuracy.

    Args:
        reference_probabilities: Keras's `[n, num_classes]` output.
        probabilities: the artifact's output on the same inputs.
        labels: optional int class ids, for accuracy and its change.
    """
    reference_probabilities = np.asarray(reference_probabilities, np.float64)
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.shape != reference_probabilities.shape:
        raise ExportError(
            f"artifact output shape {probabilities.shape} != Keras output shape {reference_probabilities.shape}"
        )
    difference = np.abs(probabilities - reference_probabilities)
    predicted = probabilities.argmax(axis=-1)
    figures = {
        "examples": int(len(probabilities)),
        "has_nan": bool(np.isnan(probabilities).any()),
        "max_abs_diff": float(np.nanmax(difference)) if difference.size else 0.0,
        "mean_abs_diff": float(np.nanmean(difference)) if difference.size else 0.0,
        "label_agreement": float((predicted == reference_probabilities.argmax(axis=-1)).mean()),
    }
    if labels is not None:
        labels = np.asarray(labels)
        figures["accuracy"] = float((predicted == labels).mean())
        figures["accuracy_change"] = figures["accuracy"] - float(
            (reference_probabilities.argmax(axis=-1) == labels).mean()
        )
    return figures


def require_float32_parity(artifact, figures, tolerance=FLOAT32_TOLERANCE):
    """Raise unless a float32 artifact reproduces Keras within `tolerance`."""
    if figures["has_nan"]:
        raise ExportError(f"{artifact}: NaN in the outputs on validation examples")
    if figures["max_abs_diff"] > tolerance:
        raise ExportError(
            f"{artifact}: max |probability - Keras| = {figures['max_abs_diff']:.3g} on "
            f"{figures['examples']} validation examples exceeds {tolerance:g}"
        )


def format_table(rows):
    """A small fixed-width table of `{artifact: figures}`."""
    if any("identical_sequences" in figures for figures in rows.values()):
        return format_generation_table(rows)
    # LiteRT rows: the builtin kernels, then the same file under XNNPACK.
    lines = [f"{'artifact':<34}{'max|Δ|':>10}{'mean|Δ|':>10}{'agree':>8}{'acc':>8}{'Δacc':>8}"
             f"{'xnn max|Δ|':>12}{'xnn acc':>8}{'size':>10}"]
    for artifact, figures in rows.items():
        accuracy = figures.get("accuracy")
        change = figures.get("accuracy_change")
        xnnpack = figures.get("xnnpack", {})
        lines.append(
            f"{artifact:<34}{figures['max_abs_diff']:>10.2e}{figures['mean_abs_diff']:>10.2e}"
            f"{figures['label_agreement']:>8.2%}"
            f"{'' if accuracy is None else format(accuracy, '.2%'):>8}"
            f"{'' if change is None else format(change * 100, '+.2f'):>8}"
            f"{'' if not xnnpack else format(xnnpack['max_abs_diff'], '.2e'):>12}"
            f"{'' if xnnpack.get('accuracy') is None else format(xnnpack['accuracy'], '.2%'):>8}"
            f"{_size(figures.get('bytes')):>10}"
        )
    return "\n".join(lines)


def _size(num_bytes):
    if num_bytes is None:
        return ""
    return f"{num_bytes / 1024:.0f} KiB" if num_bytes < 1024**2 else f"{num_bytes / 1024**2:.2f} MiB"


def format_generation_table(rows):
    """The causal-LM version: greedy generation agreement with Keras."""
    lines = [f"{'artifact':<34}{'same seqs':>10}{'tokens':>8}{'agree':>8}{'max|Δlogit|':>12}{'xnn agree':>10}"
             f"{'size':>10}"]
    for artifact, figures in rows.items():
        if "identical_sequences" not in figures:
            lines.append(f"{artifact:<34}{'':>10}{figures.get('generated_tokens', 0):>8}")
            continue
        difference = figures.get("prefill_logits_max_abs_diff", figures.get("logits_max_abs_diff"))
        xnnpack = figures.get("xnnpack")
        lines.append(
            f"{artifact:<34}{figures['identical_sequences']:>10.0%}{figures['generated_tokens']:>8}"
            f"{figures['token_agreement']:>8.1%}{difference:>12.2e}"
            f"{'' if xnnpack is None else format(xnnpack['token_agreement'], '.1%'):>10}"
            f"{_size(figures.get('bytes')):>10}"
        )
    return "\n".join(lines)
