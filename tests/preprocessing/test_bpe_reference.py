"""The pure-Python BPE tokenizer (what runs beside a LiteRT GPT-2) gives
exactly keras-hub's ids: GPT-2's published vocabulary, tricky and random text."""

import random

import numpy as np
import pytest

from zoo.models.gpt2 import GPT2Tokenizer
from zoo.preprocessing import bpe
from zoo.preprocessing.bpe_reference import ReferenceBytePairTokenizer

TRICKY = [
    "Hello world", "", " ", "\n", "x\n", "x \n", "  leading spaces", "trailing spaces   ",
    "tabs\tand\nnewlines\n\n\nx", "\r\n\r\n", "Ünïcode café 日本語 🙂", "it's they're I'll we've",
    "an 't please", "go'st", "'tis", "a\u00a0b\u2009c\u3000d", "a \u00a0b", "x\v y", "numbers 123456 3.14",
    "<|endoftext|>start and<|endoftext|>", "x <|endoftext|> y", "ROMEO:\nO, she doth teach the torches to burn bright!",
]
ALPHABET = list("ab '\t\n\r\f\v.!é१\u00a0\u2009\u202f\u3000日🙂1") + ["<|endoftext|>", "'s", "'t", "'ll"]


@pytest.fixture(scope="module")
def tokenizers():
    vocabulary, merges = bpe.gpt2_vocabulary_files()
    return (ReferenceBytePairTokenizer.from_files(vocabulary, merges),
            GPT2Tokenizer(vocabulary=str(vocabulary), merges=str(merges)))


def test_published_vocabulary_ids(tokenizers):
    reference, _ = tokenizers
    assert reference.encode("Hello world") == [15496, 995]
    assert reference.end_token_id == 50256
    # GPT-2's own split of contractions after a space (OpenAI's tokenizer agrees).
    assert reference.encode(" 't") == [705, 83]


def test_same_ids_as_keras_hub(tokenizers):
    reference, keras_tokenizer = tokenizers
    rng = random.Random(0)
    texts = TRICKY + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14))) for _ in range(600)]
    for text, expected in zip(texts, keras_tokenizer(texts)):
        assert reference.encode(text) == np.asarray(expected).tolist(), repr(text)


def test_decode_round_trip(tokenizers):
    reference, keras_tokenizer = tokenizers
    for text in TRICKY:
        ids = reference.encode(text)
        assert reference.decode(ids) == text
    # Bytes split across tokens decode once complete; a lone fragment becomes U+FFFD.
    assert reference.decode(reference.encode("🙂")[:1]) == "\ufffd"


def test_tokenizer_keeps_tensorflow_path_after_saving(tmp_path):
    import keras

    vocabulary, merges = bpe.gpt2_vocabulary_files()
    tokenizer = GPT2Tokenizer(vocabulary=str(vocabulary), merges=str(merges))
    restored = GPT2Tokenizer.from_config(keras.saving.serialize_keras_object(tokenizer)["config"])
    restored.set_vocabulary_and_merges(tokenizer.vocabulary, tokenizer.merges)
    assert np.asarray(restored(" 't")).tolist() == [705, 83]
