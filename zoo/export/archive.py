"""`ExportArchive`: Keras's, but writing each variable once.

Keras 3.15 on TensorFlow stores every weight twice in an exported SavedModel
(keras-team/keras#23553, open): `track()` lists the `keras.Variable` wrappers,
the traced endpoints capture the `tf.Variable`s inside them, and the two
Python objects do not deduplicate in the checkpoint. The result is twice the
file size and twice the variable memory in every process that loads it, TF
Serving included. Tracking the `tf.Variable`s themselves (the fix proposed in
keras-team/keras#23563) lets TensorFlow's object-identity deduplication
collapse the two lists.
"""

import keras

# `keras.export.ExportArchive()` is a factory returning this class on the
# TensorFlow backend, so the fix subclasses it directly.
from keras.src.backend.tensorflow.export import TFExportArchive


class ExportArchive(TFExportArchive):
    """Drop-in `keras.export.ExportArchive` (TensorFlow backend) without duplicate weights."""

    def _backend_track_layer(self, layer):
        # TFExportArchive's own version, tracking the tf.Variables instead.
        trackable = self._tf_trackable
        trackable.variables += [_unwrap(variable) for variable in layer.variables]
        trackable.trainable_variables += [_unwrap(variable) for variable in layer.trainable_variables]
        trackable.non_trainable_variables += [_unwrap(variable) for variable in layer.non_trainable_variables]


def _unwrap(variable):
    # keras.Variable on TensorFlow keeps its tf.Variable in `.value`.
    return variable.value if isinstance(variable, keras.Variable) else variable
