"""Pure-Python reference of zoo's word tokenizer: the rules, written once.

This module has no TensorFlow import on purpose. It is the specification a
phone app (or any non-TF client) ports, and it is what `WordTokenizer` (the
Keras layer) mirrors op for op inside the graph. The test suite checks that
both produce identical token ids on tricky text.

The rules, in order:
0. A text may be `str` or UTF-8 `bytes`; invalid UTF-8 becomes U+FFFD, one
   per maximal invalid sequence (Python's "replace", which is also what
   ICU's converters inside TensorFlow do). The text ends at its first NUL
   character (as in ICU's lowercasing and MediaPipe's tokenizer).
1. Lowercase (if `lower`) with Unicode's full mapping and its context rules
   (`"İ"` becomes `"i̇"`, a word-final `"Σ"` becomes `"ς"`), as ICU inside
   `tf.strings.lower(..., encoding="utf-8")` does. The few letters added in
   Unicode 14 (which TensorFlow 2.21's ICU predates) stay as they are.
2. Punctuation: each ASCII punctuation character is either surrounded by
   spaces (`"split"`, so `"great!"` gives `"great"`, `"!"`), removed
   (`"strip"`), or a word boundary that is dropped (`"delimit"`, so
   `"don't!"` gives `"don"`, `"t"`), or left inside the words (`"keep"`).
   MediaPipe's regex tokenizer does exactly "delimit" or "keep" when there
   is no lowercasing (`mediapipe_exact`). Non-ASCII punctuation is left
   alone, like any other letter.
3. Split on runs of ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r) only;
   a no-break space does not split, exactly like `tf.strings.split`.
4. Look each word up in the vocabulary: id 0 is padding, id 1 is the
   out-of-vocabulary token, words start at 2.
5. Truncate to `sequence_length` ids (keeping the start) and right-pad with 0.

Example:
>>> tokenizer = ReferenceWordTokenizer(["[PAD]", "[UNK]", "good", "!"], 4)
>>> tokenizer.encode(["Good film!"]).tolist()
[[2, 1, 3, 0]]
"""

import collections
import itertools
import json
import re
import string

import numpy as np

PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1
PUNCTUATION_MODES = ("split", "strip", "delimit", "keep")

# `string.punctuation` is exactly the 32 ASCII punctuation characters. Both
# Python's `re` and RE2 (used by `tf.strings.regex_replace`) read this class
# the same way, and ASCII bytes never occur inside a multi-byte UTF-8
# sequence, so byte-level (TF) and code-point-level (Python) matching agree.
PUNCTUATION_PATTERN = "[" + re.escape(string.punctuation) + "]"
ASCII_WHITESPACE = " \t\n\v\f\r"
_PUNCTUATION_RE = re.compile(PUNCTUATION_PATTERN)
# MediaPipe Tasks' regex tokenizer splits on a delimiter pattern and drops the
# delimiters. With no lowercasing, its ids are zoo's (`mediapipe_exact`) for
# punctuation="delimit" with the first pattern (ASCII whitespace and ASCII
# punctuation) and for punctuation="keep" with the second (ASCII whitespace).
MEDIAPIPE_DELIMITER_PATTERNS = {
    "delimit": r"[ \t\n\x0b\x0c\r!-/:-@\[-`{-~]+",
    "keep": r"[ \t\n\x0b\x0c\r]+",
}
_WHITESPACE_RE = re.compile("[" + re.escape(ASCII_WHITESPACE) + "]+")
# ASCII characters Python's `str.split()` splits on besides ASCII whitespace: an ASCII text without
# them splits there exactly as rule 3 says, without the regex.
_PYTHON_ONLY_ASCII_WHITESPACE_RE = re.compile("[\x1c-\x1f]")


# Letters with a lowercase mapping in Python's Unicode 14 tables that
# TensorFlow 2.21's ICU leaves unchanged. tests/preprocessing sweeps every
# code point through both, so a TensorFlow upgrade that changes this fails
# loudly instead of drifting.
_LEFT_UNCHANGED_BY_TF = frozenset(
    [0x2C2F, 0xA7C0, 0xA7D0, 0xA7D6, 0xA7D8]
    + [c for c in range(0x10570, 0x10596) if c not in (0x1057B, 0x1058B, 0x10593)]
)
_LEFT_UNCHANGED_RE = re.compile(
    "(" + "|".join(re.escape(chr(c)) for c in sorted(_LEFT_UNCHANGED_BY_TF)) + ")"
)


def lowercase(text):
    """Unicode lowercase exactly as TensorFlow computes it (see rule 1)."""
    text = text.split("\x00", 1)[0]
    if not _LEFT_UNCHANGED_RE.search(text):
        return text.lower()
    # The split keeps the unchanged letters as their own parts (odd indices).
    parts = _LEFT_UNCHANGED_RE.split(text)
    return "".join(part if index % 2 else part.lower() for index, part in enumerate(parts))


def as_text(text):
    """Rule 0's decoding: `str` as it is, `bytes` as UTF-8 with U+FFFD for invalid sequences."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "replace")
    raise TypeError(f"expected a text (str or UTF-8 bytes), got {type(text).__name__}")


def split_words(text, lower=True, punctuation="split"):
    """Apply rules 0-3 and return the list of words."""
    text = as_text(text).split("\x00", 1)[0]
    ascii_text = text.isascii()
    if lower:  # ASCII lowercases the same under every Unicode version
        text = text.lower() if ascii_text else lowercase(text)
    if punctuation == "split":
        text = _PUNCTUATION_RE.sub(lambda match: f" {match.group(0)} ", text)
    elif punctuation == "strip":
        text = _PUNCTUATION_RE.sub("", text)
    elif punctuation == "delimit":
        text = _PUNCTUATION_RE.sub(" ", text)
    elif punctuation == "keep":
        pass
    else:
        raise ValueError(
            f"punctuation must be one of {PUNCTUATION_MODES}, got {punctuation!r}"
        )
    if ascii_text and not _PYTHON_ONLY_ASCII_WHITESPACE_RE.search(text):
        return text.split()
    return [word for word in _WHITESPACE_RE.split(text) if word]


def mediapipe_exact(lower, punctuation):
    """MediaPipe does not lowercase, and can only split on punctuation or leave it in the words."""
    return not lower and punctuation in MEDIAPIPE_DELIMITER_PATTERNS


def mediapipe_delimiter_pattern(punctuation):
    """The delimiter regex MediaPipe's tokenizer gets (exact where `mediapipe_exact`, else the closest)."""
    return MEDIAPIPE_DELIMITER_PATTERNS.get(punctuation, MEDIAPIPE_DELIMITER_PATTERNS["delimit"])


def build_vocabulary(texts, max_size, lower=True, punctuation="split", min_count=1):
    """Most frequent words first (ties broken alphabetically), specials first.

    `max_size` counts the two special tokens, so ids stay below `max_size`.
    """
    if max_size < 3:
        raise ValueError(f"vocabulary_size must be at least 3, got {max_size}")
    counts = collections.Counter()
    for text in texts:
        counts.update(split_words(text, lower=lower, punctuation=punctuation))
    for special in (PAD_TOKEN, OOV_TOKEN):
        counts.pop(special, None)
    ranked = sorted(
        (word for word, count in counts.items() if count >= min_count),
        key=lambda word: (-counts[word], word),
    )
    return [PAD_TOKEN, OOV_TOKEN] + ranked[: max_size - 2]


class ReferenceWordTokenizer:
    """Text to padded token ids, in plain Python and NumPy.

    Args:
        vocabulary: list of str. Index is the token id; must start with
            `"[PAD]"`, `"[UNK]"`.
        sequence_length: int. Length of every encoded row.
        lower: bool. Apply rule 1.
        punctuation: `"split"` or `"strip"` (rule 2).
    """

    def __init__(self, vocabulary, sequence_length, lower=True, punctuation="split"):
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(
                f"vocabulary must start with {PAD_TOKEN!r}, {OOV_TOKEN!r}; "
                f"got {vocabulary[:2]!r}"
            )
        split_words("", punctuation=punctuation)  # validates the mode early
        self.vocabulary = vocabulary
        self.sequence_length = int(sequence_length)
        self.lower = lower
        self.punctuation = punctuation
        self._ids = {word: index for index, word in enumerate(vocabulary)}

    @classmethod
    def from_json(cls, path):
        """Load from a sidecar written by `to_json` (or by zoo's exporters)."""
        with open(path, encoding="utf-8") as file:
            spec = json.load(file)
        tokenizer = spec.get("tokenizer", spec)
        return cls(
            tokenizer["vocabulary"],
            tokenizer["sequence_length"],
            lower=tokenizer["lower"],
            punctuation=tokenizer["punctuation"],
        )

    def to_dict(self):
        return {
            "type": "word",
            "rules": "zoo.preprocessing.reference (lowercase, punctuation, "
            "ASCII-whitespace split, lookup, truncate, right-pad)",
            "lower": self.lower,
            "punctuation": self.punctuation,
            "sequence_length": self.sequence_length,
            "pad_id": PAD_ID,
            "oov_id": OOV_ID,
            "vocabulary": self.vocabulary,
        }

    def to_json(self, path):
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, ensure_ascii=False)

    @property
    def mediapipe_exact(self):
        """Whether MediaPipe's regex tokenizer (`mediapipe_delimiter_pattern`) gives exactly these ids."""
        return mediapipe_exact(self.lower, self.punctuation)

    def tokenize(self, text):
        return split_words(text, lower=self.lower, punctuation=self.punctuation)

    def encode(self, texts):
        """Return int32 ids of shape `[len(texts), sequence_length]` (texts: str or UTF-8 bytes)."""
        rows = self._words(texts, "encode", self.sequence_length)
        # One lookup pass and one NumPy write for the whole batch: the row-major mask of text positions
        # takes the words in order.
        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        ids = np.full((len(rows), self.sequence_length), PAD_ID, dtype=np.int32)
        ids[np.arange(self.sequence_length) < lengths[:, None]] = self._lookup(rows, int(lengths.sum()))
        return ids

    def encode_whole(self, texts):
        """Each text's ids, not cut at the window: a list of int32 arrays (for reading long documents,
        `zoo.runtime.documents`)."""
        rows = self._words(texts, "encode_whole")
        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        return np.split(self._lookup(rows, int(lengths.sum())), np.cumsum(lengths)[:-1])

    def _words(self, texts, method, limit=None):
        """Each text's words (at most `limit`); a text that is not one is an error naming its row."""
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"{method}() takes a list of texts, not one text")
        rows = []
        for row, text in enumerate(texts):
            try:
                rows.append(self.tokenize(text)[:limit])
            except TypeError as error:
                raise TypeError(f"texts[{row}]: {error}") from None
        return rows

    def _lookup(self, rows, count):
        """The int32 ids of every word of `rows`, in order, in one pass (`count` words in all)."""
        return np.fromiter(map(self._ids.get, itertools.chain.from_iterable(rows), itertools.repeat(OOV_ID)),
                           np.int32, count)
