"""The Keras WordTokenizer and the pure-Python reference give the same ids."""

import zipfile

import hypothesis
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.models import TextClassifierPreprocessor
from zoo.preprocessing import ReferenceWordTokenizer, WordTokenizer
from zoo.preprocessing import reference
from tests import helpers

CORPUS = [
    "The movie was GREAT, wasn't it?",
    "naïve café owners — really ‘great’ fun…",
    "İstanbul ΟΔΟΣ straße",
    "great great great film !",
]
TRICKY = [
    "",
    "   ",
    "Hello, World!",
    "DON'T stop...now",
    "naïve café ÉCOLE NAÏVE",
    "ΟΔΟΣ ΑΣ. Σ",  # final sigma context
    "İstanbul",  # one upper-case letter, two lower-case code points
    "tab\tsep\nnew\rline\vvt\fff",
    "no\u00a0break\u2003em\u2028line\x85nel",  # not ASCII whitespace: no split
    "file\x1cgroup\x1drecord\x1eunit\x1fend",  # ASCII, and Python's str.split() splits there: no split
    "emoji 😀 ok 👍🏽",
    "中文字符 日本語",
    "x\x00y z",  # TF's lowercase stops at NUL
    "Ⱟ uppercase letters newer than TF's ICU",
    "'quoted' \"double\" (parens) [brackets] {braces} <angle> a/b a\\b a|b",
    "‘curly’ — dash … ellipsis",
    "great " * 100,  # longer than the sequence length
    "unknownword anotherunknown",
]


def tf_ids(tokenizer, texts, sequence_length):
    preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    return preprocessor(tf.constant(texts, dtype=tf.string)).numpy()


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("punctuation", ["split", "strip", "delimit", "keep"])
def test_keras_and_reference_ids_match_on_tricky_text(lower, punctuation):
    tokenizer = WordTokenizer(vocabulary_size=50, lower=lower, punctuation=punctuation)
    tokenizer.adapt(CORPUS + TRICKY)
    expected = tokenizer.reference(16).encode(TRICKY)
    np.testing.assert_array_equal(tf_ids(tokenizer, TRICKY, 16), expected)
    # The tricky set really exercises out-of-vocabulary ids and truncation.
    assert (expected == reference.OOV_ID).any()
    assert (expected[TRICKY.index("great " * 100)] != reference.PAD_ID).all()


def test_reference_rules_on_examples():
    assert reference.split_words("DON'T stop...now") == ["don", "'", "t", "stop", ".", ".", ".", "now"]
    assert reference.split_words("DON'T stop", punctuation="strip") == ["dont", "stop"]
    assert reference.split_words("ΟΔΟΣ ΑΣ") == ["οδος", "ας"]
    assert reference.split_words("no\u00a0break") == ["no\u00a0break"]
    assert reference.split_words("x\x00y z") == ["x"]
    # MediaPipe's rules: no lowercasing, punctuation only separates words, NUL ends the text.
    assert reference.split_words("DON'T stop...now", lower=False, punctuation="delimit") == ["DON", "T", "stop", "now"]
    assert reference.split_words("x\x00y z", lower=False, punctuation="delimit") == ["x"]
    assert reference.split_words("DON'T stop...now", lower=False, punctuation="keep") == ["DON'T", "stop...now"]
    assert reference.mediapipe_exact(False, "delimit") and reference.mediapipe_exact(False, "keep")
    assert not reference.mediapipe_exact(True, "delimit") and not reference.mediapipe_exact(False, "split")


def test_lowercase_matches_tensorflow_on_every_code_point():
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    lowered = tf.strings.lower(tf.constant(characters), encoding="utf-8").numpy()
    mismatches = [
        hex(ord(c)) for c, out in zip(characters, lowered) if out.decode("utf-8") != reference.lowercase(c)
    ]
    assert mismatches == []


# Random unicode words and known words, glued with whitespace or punctuation.
WORDS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    st.sampled_from(["great", "GREAT", "café", "CAFÉ", "b", "A"]),
)
TEXTS = st.lists(st.tuples(WORDS, st.sampled_from([" ", "\t", ", ", "!", "\n", "", "\u00a0"])), max_size=10).map(
    lambda parts: "".join(word + separator for word, separator in parts)
)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(st.lists(TEXTS, min_size=1, max_size=8))
def test_keras_and_reference_ids_match_on_random_text(texts):
    for tokenizer in PARITY_TOKENIZERS:
        np.testing.assert_array_equal(tf_ids(tokenizer, texts, 12), tokenizer.reference(12).encode(texts))


PARITY_TOKENIZERS = [WordTokenizer(vocabulary_size=40)] + [
    WordTokenizer(vocabulary_size=40, lower=False, punctuation=mode) for mode in ("delimit", "keep")]
for _tokenizer in PARITY_TOKENIZERS:
    _tokenizer.adapt(CORPUS + ["a b c A B C great café"])


def test_vocabulary_is_frequency_ranked_and_deterministic():
    vocabulary = reference.build_vocabulary(["b a", "a c", "a b"], max_size=10)
    assert vocabulary == ["[PAD]", "[UNK]", "a", "b", "c"]
    assert reference.build_vocabulary(["b a", "a c", "a b"], max_size=4) == ["[PAD]", "[UNK]", "a", "b"]
    assert reference.build_vocabulary(["b a", "a c", "a b"], max_size=10, min_count=2) == ["[PAD]", "[UNK]", "a", "b"]


def test_unadapted_tokenizer_maps_every_word_to_oov():
    tokenizer = WordTokenizer()
    assert not tokenizer.is_adapted
    assert tokenizer(["any words"]) == [[1, 1]]


def test_vocabulary_is_saved_as_an_asset_and_reloads(tmp_path):
    model = helpers.build_tiny("lstm_classifier")
    # Words may hold line breaks other than "\n" (never "\n": it splits).
    vocabulary = model.preprocessor.tokenizer.get_vocabulary() + ["line\u2028break", "nel\x85word"]
    model.preprocessor.tokenizer.set_vocabulary(vocabulary)
    path = tmp_path / "model.keras"
    model.save(path)
    assert any(name.endswith("vocabulary.txt") for name in zipfile.ZipFile(path).namelist())
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.preprocessor.tokenizer.get_vocabulary() == vocabulary


def test_reference_round_trips_through_json(tmp_path):
    tokenizer = WordTokenizer(vocabulary_size=30)
    tokenizer.adapt(CORPUS)
    original = tokenizer.reference(10)
    original.to_json(tmp_path / "tokenizer.json")
    loaded = ReferenceWordTokenizer.from_json(tmp_path / "tokenizer.json")
    np.testing.assert_array_equal(loaded.encode(TRICKY), original.encode(TRICKY))


def test_bad_vocabulary_and_mode_are_rejected():
    with pytest.raises(ValueError, match="must start with"):
        WordTokenizer(vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        WordTokenizer(vocabulary=["[PAD]", "[UNK]", "a", "a"])
    with pytest.raises(ValueError, match="punctuation must be one of"):
        WordTokenizer(punctuation="preserve")


@pytest.mark.parametrize(
    "module", ["zoo.preprocessing.reference", "zoo.preprocessing.word_tokenizer", "zoo.models.text_classifier_preprocessor"]
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


# Fragments that exercise every kind of invalid UTF-8: a lone continuation or
# lead byte, a truncated sequence, an encoded surrogate, an overlong form.
UTF8_PIECES = st.one_of(st.binary(max_size=6), st.sampled_from(
    [b" ", b"great", b"GREAT", b"caf\xc3\xa9", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xe2\x82",
     b"\xc0\xaf", b"!", b"\x00", b"\t"]))


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(st.lists(st.lists(UTF8_PIECES, max_size=10).map(b"".join), min_size=1, max_size=6))
def test_invalid_utf8_gives_the_same_words_in_keras_and_the_reference(texts):
    """Rule 0: each maximal invalid sequence is one U+FFFD, in the graph and in Python."""
    for tokenizer in PARITY_TOKENIZERS:
        graph_words = [[word.decode("utf-8") for word in row] for row in
                       tokenizer.split_words(tf.constant(texts)).to_list()]
        assert graph_words == [reference.split_words(text, tokenizer.lower, tokenizer.punctuation) for text in texts]
        np.testing.assert_array_equal(tf_ids(tokenizer, texts, 12), tokenizer.reference(12).encode(texts))
