"""Long documents in TensorFlow ops: the rule of `zoo.runtime.documents` (its docstring says it), as graphs.

`document_windows` cuts ragged token ids into the windows the rule gives;
`predict_documents` runs a zoo classifier on them and averages each text's
windows. The SavedModel's `serving_documents` signature is the same two steps
after the tokenizer, so Keras, the SavedModel and the NumPy runners agree
(zoo's export checks it).
"""

import numpy as np
import tensorflow as tf

from zoo.runtime.documents import MAX_WINDOWS, PAD_ID, check_max_windows


def document_windows(token_ids, window, max_windows=MAX_WINDOWS):
    """`(windows, owners)` for ragged int `token_ids` `[batch, None]`: int32 `[total, window]` and int32 `[total]`."""
    token_ids = tf.cast(token_ids, tf.int32)
    lengths = tf.cast(token_ids.row_lengths(), tf.int32)
    counts = tf.clip_by_value((lengths + window - 1) // window, 1, max_windows)
    owners = tf.repeat(tf.range(tf.shape(lengths)[0], dtype=tf.int32), counts)
    index = tf.ragged.range(counts).flat_values  # each window's place among its text's
    length, count = tf.gather(lengths, owners), tf.gather(counts, owners)
    starts = tf.where(count > 1, index * (length - window) // tf.maximum(count - 1, 1), 0)
    positions = starts[:, tf.newaxis] + tf.range(window, dtype=tf.int32)[tf.newaxis, :]
    # One padding id after the last text's ids: every position past a text's end reads it.
    values = tf.concat([token_ids.flat_values, [PAD_ID]], axis=0)
    flat = tf.cast(tf.gather(token_ids.row_starts(), owners), tf.int32)[:, tf.newaxis] + positions
    inside = positions < length[:, tf.newaxis]
    windows = tf.gather(values, tf.where(inside, flat, tf.shape(values)[0] - 1))
    return windows, owners


def pool_windows(probabilities, owners, count):
    """Each text's mean over its windows: `[count, classes]`."""
    return tf.math.unsorted_segment_mean(probabilities, owners, count)


def predict_documents(classifier, texts, max_windows=MAX_WINDOWS, batch_size=256):
    """Probabilities `[len(texts), classes]` of a zoo classifier reading each text whole, window by window.

    Args:
        classifier: a zoo `TextClassifier` or `MultiLabelTextClassifier`.
        texts: a list of strings.
        max_windows: at most this many windows per text (`zoo.runtime.documents`).
        batch_size: windows per model call.
    """
    check_max_windows(max_windows)
    texts = list(texts)
    if not texts:
        return np.zeros((0, classifier.num_classes), np.float32)
    token_ids = classifier.preprocessor.tokenizer(tf.constant(texts))
    if not isinstance(token_ids, tf.RaggedTensor):  # keras-hub hands eager results back as Python lists
        token_ids = tf.ragged.constant(token_ids, dtype=tf.int32, ragged_rank=1)
    windows, owners = document_windows(token_ids, classifier.sequence_length, max_windows)
    probabilities = tf.concat([classifier(windows[start : start + batch_size], training=False)
                               for start in range(0, int(windows.shape[0]), batch_size)], axis=0)
    return pool_windows(tf.cast(probabilities, tf.float32), owners, len(texts)).numpy()
