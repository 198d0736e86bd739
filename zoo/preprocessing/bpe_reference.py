"""Pure-Python GPT-2 byte-level BPE: exactly the ids keras-hub's `GPT2Tokenizer` gives.

This is what runs beside a LiteRT language model (`zoo.runtime.Generator`) and
what a phone app ports: the vocabulary and merges come from the sidecar JSON;
no TensorFlow. Merging is GPT-2's `encoder.py` algorithm (bytes mapped to
printable characters, lowest-rank pair first). Pre-tokenization follows
keras-hub, not OpenAI: keras-hub emulates GPT-2's look-ahead regex with RE2
plus a marker character, which splits some contractions differently (" 't"
is " " + "'t" there, " '" + "t" in OpenAI's tokenizer). The model was trained
on keras-hub's ids, so those are the ones to reproduce; the steps below mirror
`keras_hub.src.tokenizers.byte_pair_tokenizer.split_strings_for_bpe`.
tests/preprocessing/test_bpe_reference.py checks id equality with keras-hub.
"""

import functools
import json

import regex

END_OF_TEXT = "<|endoftext|>"

# keras-hub's patterns, with RE2's ASCII-only `\s` spelled out ([\t\n\f\r ]).
_MARKER = "\u096c"  # "६", keras-hub's stand-in for GPT-2's look-ahead
_SPECIAL_SPACES = "\u00a0\u2009\u202f\u3000"
_SPACE = "\t\n\f\r "
_MARK_LEADING_SPACE = regex.compile(f"( )([^{_SPACE}{_SPECIAL_SPACES}])")
# keras-hub writes `(\s{SPECIAL_SPACES})$`: a sequence, not a class, kept as is.
# RE2's `$` is Python's `\Z` (Python's `$` also matches before a final "\n").
_MARK_TRAILING_SPACE = regex.compile(f"([{_SPACE}]{_SPECIAL_SPACES})\\Z")
_SPLIT_1 = regex.compile(
    f"'s|'t|'re|'ve|'m|'ll|'d|[{_SPACE}{_SPECIAL_SPACES}]+[\n\r\t\f{_MARKER}{_SPECIAL_SPACES}]"
    f"| ?\\p{{L}}+| ?[\\p{{N}}]+| ?[^{_SPACE}\\p{{L}}\\p{{N}}{_SPECIAL_SPACES}]+"
)
_SPLIT_2 = regex.compile(f"[ \t\r\f\v{_MARKER}{_SPECIAL_SPACES}]\\Z")


def _regex_split(text, pattern):
    """tensorflow_text.regex_split keeping the delimiters: matches and the gaps between."""
    pieces, start = [], 0
    for match in pattern.finditer(text):
        if match.start() > start:
            pieces.append(text[start : match.start()])
        pieces.append(match.group())
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def pretokenize(text, special_tokens=(END_OF_TEXT,)):
    """The pieces keras-hub's GPT-2 tokenizer runs BPE on; special tokens stay whole."""
    text = _MARK_LEADING_SPACE.sub(f"{_MARKER}\\1\\2", text)
    text = _MARK_TRAILING_SPACE.sub(f"\\1{_MARKER}", text)
    pieces = [text]
    for token in special_tokens:
        pieces = [part for piece in pieces for part in _regex_split(piece, regex.compile(regex.escape(token)))]
    words = []
    for piece in pieces:
        if piece in special_tokens:
            words.append(piece)
            continue
        words += [part for word in _regex_split(piece, _SPLIT_1) for part in _regex_split(word, _SPLIT_2)]
    return [word for word in words if word != _MARKER]


@functools.lru_cache(maxsize=1)
def byte_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {byte: chr(character) for byte, character in zip(printable, characters)}


class ReferenceBytePairTokenizer:
    """Encode text to GPT-2 BPE ids and decode ids back, in plain Python.

    Args:
        vocabulary: `{token: id}`.
        merges: merge rules `"a b"`, highest priority first.

    Example:
    >>> tokenizer = ReferenceBytePairTokenizer.from_files("vocab.json", "merges.txt")
    >>> tokenizer.encode("Hello world")
    [15496, 995]
    """

    def __init__(self, vocabulary, merges):
        self.vocabulary = dict(vocabulary)
        self.merges = list(merges)
        self._ranks = {tuple(rule.split(" ")): rank for rank, rule in enumerate(self.merges)}
        self._tokens = {index: token for token, index in self.vocabulary.items()}
        self._byte_to_unicode = byte_to_unicode()
        self._unicode_to_byte = {character: byte for byte, character in self._byte_to_unicode.items()}
        if END_OF_TEXT not in self.vocabulary:
            raise ValueError(f"vocabulary has no {END_OF_TEXT!r} token")
        self.end_token_id = self.vocabulary[END_OF_TEXT]
        self._cache = {}

    @classmethod
    def from_files(cls, vocabulary_path, merges_path):
        from zoo.preprocessing.bpe import read_merges

        with open(vocabulary_path, encoding="utf-8") as file:
            vocabulary = json.load(file)
        return cls(vocabulary, read_merges(merges_path))

    def vocabulary_size(self):
        return len(self.vocabulary)

    def encode(self, text):
        """Token ids of one string (no start or end token added)."""
        ids = []
        for word in pretokenize(text):
            ids.extend([self.end_token_id] if word == END_OF_TEXT else self._word_ids(word))
        return ids

    def decode(self, token_ids):
        """Text of the ids; bytes that are not valid UTF-8 become U+FFFD."""
        characters = "".join(self._tokens[int(index)] for index in token_ids)
        return bytes(self._unicode_to_byte[character] for character in characters).decode("utf-8", "replace")

    def _word_ids(self, word):
        if word not in self._cache:
            symbols = "".join(self._byte_to_unicode[byte] for byte in word.encode("utf-8"))
            self._cache[word] = [self.vocabulary[piece] for piece in self._merge(symbols)]
        return self._cache[word]

    def _merge(self, symbols):
        parts = list(symbols)
        while len(parts) > 1:
            pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
            best = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if best not in self._ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts
