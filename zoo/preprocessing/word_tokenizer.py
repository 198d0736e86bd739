"""`WordTokenizer`: the Keras layer that turns raw strings into word ids.

It is the in-graph twin of `zoo.preprocessing.reference`: every rule there is
one TensorFlow op here, so the ids are the same in Keras, in an exported
SavedModel and in a phone app that ports the reference. Only core TensorFlow
ops are used, so a stock TF Serving binary runs the exported graph.
"""

import os

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.utils.tensor_utils import preprocessing_function

from zoo.preprocessing import reference

VOCABULARY_FILENAME = "vocabulary.txt"


@keras.saving.register_keras_serializable(package="zoo")
class WordTokenizer(keras_hub.tokenizers.Tokenizer):
    """Lowercase, split off punctuation, split on whitespace, look words up.

    The vocabulary is learned with `adapt()` (or passed in) and saved as the
    asset `vocabulary.txt` inside `.keras` files. Id 0 is `"[PAD]"`, id 1 is
    `"[UNK]"` (any word not in the vocabulary).

    Args:
        vocabulary: list of str or None. Index is the id; must start with
            `"[PAD]"`, `"[UNK]"`. None until `adapt()` is called.
        vocabulary_size: int. Most ids `adapt()` may hand out (specials
            included).
        lower: bool. Lowercase (Unicode-aware) before splitting.
        punctuation: `"split"` makes each ASCII punctuation mark its own word;
            `"strip"` deletes them; `"delimit"` makes them word boundaries;
            `"keep"` leaves them inside words. With `lower=False`, "delimit"
            and "keep" are exactly MediaPipe's regex tokenizer.
        min_count: int. `adapt()` drops words seen fewer times.

    Example:
    >>> tokenizer = WordTokenizer(vocabulary_size=100)
    >>> tokenizer.adapt(["a good film", "a bad film!"])
    >>> tokenizer(["A good film!"])
    [[2, 6, 3, 4]]
    """

    def __init__(
        self,
        vocabulary=None,
        vocabulary_size=20000,
        lower=True,
        punctuation="split",
        min_count=1,
        dtype="int32",
        **kwargs,
    ):
        # One code path: the TF ops, eager or traced. The pure-Python path
        # lives in `reference` and is tested against this one.
        kwargs.setdefault("_allow_python_workflow", False)
        super().__init__(dtype=dtype, **kwargs)
        reference.split_words("", punctuation=punctuation)  # validates the mode
        self.vocabulary_size_limit = int(vocabulary_size)
        self.lower = bool(lower)
        self.punctuation = punctuation
        self.min_count = int(min_count)
        self._add_special_token(reference.PAD_TOKEN, "pad_token")
        self._add_special_token(reference.OOV_TOKEN, "oov_token")
        self.set_vocabulary(vocabulary)
        self.file_assets = [VOCABULARY_FILENAME]

    # === Vocabulary ===

    def adapt(self, texts):
        """Learn the vocabulary from an iterable of Python strings."""
        self.set_vocabulary(
            reference.build_vocabulary(
                texts,
                self.vocabulary_size_limit,
                lower=self.lower,
                punctuation=self.punctuation,
                min_count=self.min_count,
            )
        )

    def set_vocabulary(self, vocabulary):
        if vocabulary is None:
            # Not adapted yet: every word is out of vocabulary.
            vocabulary = [reference.PAD_TOKEN, reference.OOV_TOKEN]
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [reference.PAD_TOKEN, reference.OOV_TOKEN]:
            raise ValueError(
                f"WordTokenizer vocabulary must start with {reference.PAD_TOKEN!r}, "
                f"{reference.OOV_TOKEN!r}; got {vocabulary[:2]!r}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("WordTokenizer vocabulary has duplicate words")
        self.vocabulary = vocabulary
        self._token_to_id = {token: index for index, token in enumerate(vocabulary)}
        # Built outside any trace so the table is a tracked resource of the
        # layer (and is exported with it), not a graph-local constant.
        with tf.init_scope():
            self.lookup_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(vocabulary, dtype=tf.string),
                    tf.range(len(vocabulary), dtype=tf.int32),
                ),
                default_value=reference.OOV_ID,
            )
        self._update_special_token_ids()

    @property
    def is_adapted(self):
        return len(self.vocabulary) > 2

    def get_vocabulary(self):
        return list(self.vocabulary)

    def vocabulary_size(self):
        return len(self.vocabulary)

    def id_to_token(self, id):
        if not 0 <= id < len(self.vocabulary):
            raise ValueError(f"id {id} is outside the vocabulary [0, {len(self.vocabulary)})")
        return self.vocabulary[id]

    def token_to_id(self, token):
        return self._token_to_id.get(token, reference.OOV_ID)

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, VOCABULARY_FILENAME), "w", encoding="utf-8") as file:
            file.write("\n".join(self.vocabulary))

    def load_assets(self, dir_path):
        with open(os.path.join(dir_path, VOCABULARY_FILENAME), encoding="utf-8") as file:
            # Words never contain "\n" (it splits them), but may contain
            # other line breaks such as U+2028, so no splitlines() here.
            self.set_vocabulary(file.read().split("\n"))

    @property
    def mediapipe_exact(self):
        """Whether MediaPipe Tasks' regex tokenizer yields exactly this tokenizer's ids."""
        return reference.mediapipe_exact(self.lower, self.punctuation)

    def reference(self, sequence_length):
        """The pure-Python twin of this tokenizer, padding to `sequence_length`."""
        return reference.ReferenceWordTokenizer(
            self.vocabulary, sequence_length, lower=self.lower, punctuation=self.punctuation
        )

    # === Tokenization ===

    def split_words(self, strings):
        """Rules 1-3 of `reference` as TF ops: string `[batch]` to ragged words."""
        if self.lower:
            # ICU's lowercasing also replaces invalid UTF-8 by U+FFFD and ends
            # the text at its first NUL (rule 0).
            strings = tf.strings.lower(strings, encoding="utf-8")
        else:
            # Without it RE2 would match invalid bytes one by one and the ids
            # would differ from the reference's (rule 0).
            strings = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace",
                                                   replacement_char=0xFFFD)
            strings = tf.strings.regex_replace(strings, r"(?s)\x00.*", "")
        if self.punctuation != "keep":
            replacement = {"split": r" \0 ", "strip": "", "delimit": " "}[self.punctuation]
            strings = tf.strings.regex_replace(strings, reference.PUNCTUATION_PATTERN, replacement)
        # With no separator tf.strings.split splits on runs of ASCII
        # whitespace, which is rule 3.
        return tf.strings.split(strings)

    @preprocessing_function
    def tokenize(self, inputs):
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = inputs[tf.newaxis]
        token_ids = tf.ragged.map_flat_values(self.lookup_table.lookup, self.split_words(inputs))
        return token_ids[0] if unbatched else token_ids

    @preprocessing_function
    def detokenize(self, inputs):
        inputs = tf.ragged.boolean_mask(inputs, inputs != reference.PAD_ID)
        words = tf.gather(tf.constant(self.vocabulary), inputs)
        return tf.strings.reduce_join(words, axis=-1, separator=" ")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # The vocabulary travels as an asset, not in the config.
                "vocabulary_size": self.vocabulary_size_limit,
                "lower": self.lower,
                "punctuation": self.punctuation,
                "min_count": self.min_count,
            }
        )
        return config
