"""Layers zoo's model families share."""

from zoo.layers.naive_bayes import NaiveBayesNgramLogits
