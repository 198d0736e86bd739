"""`TextClassifierPreprocessor`: raw strings to fixed-length token ids."""

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.utils.tensor_utils import convert_to_ragged_batch, preprocessing_function

from zoo.preprocessing import reference


@keras.saving.register_keras_serializable(package="zoo")
class TextClassifierPreprocessor(keras_hub.models.Preprocessor):
    """Tokenize, then truncate (keeping the start) and right-pad with id 0.

    Takes a batch of strings (ids `[batch, sequence_length]`) or one string
    (ids `[sequence_length]`, as in an unbatched `tf.data` pipeline).

    Args:
        tokenizer: `zoo.preprocessing.WordTokenizer`.
        sequence_length: int. Length of every row of token ids.

    Example:
    >>> from zoo.preprocessing import WordTokenizer
    >>> tokenizer = WordTokenizer(vocabulary=["[PAD]", "[UNK]", "good"])
    >>> preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=3)
    >>> preprocessor(["good good good good", "bad"]).numpy().tolist()
    [[2, 2, 2], [1, 0, 0]]
    """

    def __init__(self, tokenizer, sequence_length=64, **kwargs):
        kwargs.setdefault("_allow_python_workflow", False)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        token_ids, unbatched, _ = convert_to_ragged_batch(self.tokenizer(x))
        token_ids = token_ids.to_tensor(
            default_value=reference.PAD_ID, shape=[None, self.sequence_length]
        )
        if unbatched:
            token_ids = tf.squeeze(token_ids, 0)
        return keras.utils.pack_x_y_sample_weight(token_ids, y, sample_weight)

    def reference(self):
        """A `ReferenceWordTokenizer` giving exactly this layer's ids."""
        return self.tokenizer.reference(self.sequence_length)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config
