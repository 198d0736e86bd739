"""Parity of exported artifacts against the Keras model they came from."""

import hashlib

import numpy as np

from zoo.export.errors import ParityError

# float32 artifacts must match Keras this closely (max |Δ probability|, or |Δ logit|).
FLOAT32_TOLERANCE = 1e-4
# MediaPipe's TextClassifier against zoo's runner on the same float32 file (same ids, same kernels).
MEDIAPIPE_TOLERANCE = 1e-6


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
        raise ParityError(
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
        raise ParityError(f"{artifact}: NaN in the outputs on validation examples")
    if figures["max_abs_diff"] > tolerance:
        raise ParityError(
            f"{artifact}: max |probability - Keras| = {figures['max_abs_diff']:.3g} on "
            f"{figures['examples']} validation examples exceeds {tolerance:g}"
        )


def token_agreement(reference, tokens):
    """Exact sequences, and the share of reference tokens matched before the first divergence."""
    matched = 0
    for expected, got in zip(reference, tokens):
        for a, b in zip(expected, got):
            if a != b:
                break
            matched += 1
    total = sum(len(ids) for ids in reference)
    return {
        "prompts": len(reference),
        "identical_sequences": sum(a == b for a, b in zip(reference, tokens)) / max(1, len(reference)),
        "token_agreement": matched / max(1, total),
        "generated_tokens": sum(len(ids) for ids in tokens),
    }


def require_identical_tokens(artifact, figures, prompts, reference, tokens):
    """Raise unless greedy generation equals Keras's token for token, naming the first difference."""
    if figures["identical_sequences"] == 1.0:
        return
    index = next(i for i, (a, b) in enumerate(zip(reference, tokens)) if a != b)
    step = next((j for j, (a, b) in enumerate(zip(reference[index], tokens[index])) if a != b),
                min(len(reference[index]), len(tokens[index])))
    raise ParityError(
        f"{artifact}: greedy generation differs from Keras for prompt {prompts[index]!r} at new token {step} "
        f"(Keras {reference[index][step:step + 3]}, artifact {tokens[index][step:step + 3]})"
    )


def runtime_rows(figures):
    """`[(runtime, row)]` of one artifact's figures: its reference runtime first, then each other runtime's."""
    return [(figures.get("runtime", ""), figures)] + [
        (runtime, row) for runtime, row in figures.items() if isinstance(row, dict)]


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def format_size(num_bytes):
    if num_bytes is None:
        return ""
    return f"{num_bytes / 1024:.0f} KiB" if num_bytes < 1024**2 else f"{num_bytes / 1024**2:.2f} MiB"
