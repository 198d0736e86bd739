"""The one place in zoo where text becomes token ids."""

from zoo.preprocessing.reference import ReferenceWordTokenizer
from zoo.preprocessing.word_tokenizer import WordTokenizer
