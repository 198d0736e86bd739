"""The one place in zoo where text becomes token ids.

`WordTokenizer` (Keras layer, in-graph) and its pure-Python twin
`ReferenceWordTokenizer`; `bpe` (GPT-2 vocabularies) and `bpe_reference`
(GPT-2's byte-level BPE in plain Python). The reference modules import no
TensorFlow, so this package loads `WordTokenizer` only when asked for it.
"""

from zoo.preprocessing.reference import ReferenceWordTokenizer


def __getattr__(name):
    if name == "WordTokenizer":
        from zoo.preprocessing.word_tokenizer import WordTokenizer

        return WordTokenizer
    raise AttributeError(f"module 'zoo.preprocessing' has no attribute {name!r}")
