"""Long documents: windows over a text's whole token sequence, each classified, their probabilities averaged.

A classifier reads `window` tokens (its `sequence_length`); a longer text is
cut there. Read as a document, a text of `n` tokens becomes

    k = min(ceil(n / window), max_windows)      windows (1 when n <= window)
    start_i = i * (n - window) // (k - 1)        for i = 0 .. k-1 (0 when k == 1)

windows of `window` tokens spaced evenly from the first token to the last,
overlapping where `n` is not a multiple of `window`; up to
`max_windows * window` tokens they cover every token, past that they sample
the text evenly. The document's probabilities are the mean of its windows'.
A text that fits the window is one window, padded as usual: its result is the
plain prediction's.

This module is the rule in NumPy (what `zoo.runtime`'s runners and a phone app
port); `zoo.models.documents` is the same rule in TensorFlow ops, used by
Keras (`predict_documents`) and the SavedModel's `serving_documents`
signature, and zoo's export checks they agree. Cost: one model call per
window, so a document of `n` tokens costs `ceil(n / window)` predictions.
"""

import numpy as np

MAX_WINDOWS = 16
PAD_ID = 0


def window_count(length, window, max_windows=MAX_WINDOWS):
    """How many windows a text of `length` tokens is read in."""
    return int(min(max(1, -(-length // window)), max_windows))


def window_starts(length, window, max_windows=MAX_WINDOWS):
    """The first token of each window of a text of `length` tokens."""
    count = window_count(length, window, max_windows)
    if count == 1:
        return [0]
    return [i * (length - window) // (count - 1) for i in range(count)]


def split_into_windows(token_id_lists, window, max_windows=MAX_WINDOWS):
    """`(windows, owners)`: int32 `[total windows, window]` (padded with 0) and which text each window reads."""
    check_max_windows(max_windows)
    rows, owners = [], []
    for owner, ids in enumerate(token_id_lists):
        ids = np.asarray(ids, np.int32)
        for start in window_starts(len(ids), window, max_windows):
            row = np.full(window, PAD_ID, np.int32)
            piece = ids[start : start + window]
            row[: len(piece)] = piece
            rows.append(row)
            owners.append(owner)
    windows = np.stack(rows) if rows else np.zeros((0, window), np.int32)
    return windows, np.asarray(owners, np.int64)


def pool(probabilities, owners, count):
    """Each text's mean over its windows' probabilities: `[count, classes]`."""
    probabilities = np.asarray(probabilities, np.float64)
    sums = np.zeros((count, probabilities.shape[-1]))
    np.add.at(sums, owners, probabilities)
    return (sums / np.bincount(owners, minlength=count)[:, None]).astype(np.float32)


def check_max_windows(max_windows):
    if isinstance(max_windows, bool) or not isinstance(max_windows, (int, np.integer)) or max_windows < 1:
        raise ValueError(f"max_windows: expected an integer >= 1, got {max_windows!r}")
