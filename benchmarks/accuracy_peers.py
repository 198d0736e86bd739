"""The accuracy peers every classifier benchmark trains beside zoo's models, on the same split.

- TF-IDF of word uni- and bigrams with sublinear tf + LinearSVC (scikit-learn):
  the strong linear baseline for text classification.
- Multinomial Naive Bayes over binarized uni- and bigrams (Wang & Manning
  2012's MNB-bi, alpha=1): what zoo's Naive Bayes branch is on its own.
- fastText with word bigrams (`benchmarks.fasttext_peer`), when installed.

The published figures are 10-fold cross-validation means; a peer on the
identical split is what tells whether a split is easy or hard.
"""

import time

import numpy as np

from benchmarks import fasttext_peer


def naive_bayes_bigram_accuracy(train, validation, alpha=1.0):
    """MNB over binarized uni+bigram features: log-count ratio r, predict sign(x·r + b)."""

    def features(text):
        words = text.lower().split()
        return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}

    index = {}
    counts = {}
    for text, label in zip(train.texts, train.labels):
        for feature in features(text):
            column = index.setdefault(feature, len(index))
            counts.setdefault(int(label), {}).setdefault(column, 0)
            counts[int(label)][column] += 1
    num_classes = len(train.class_names)
    log_probs = np.zeros((num_classes, len(index)))
    for label in range(num_classes):
        row = np.full(len(index), alpha)
        for column, count in counts.get(label, {}).items():
            row[column] += count
        log_probs[label] = np.log(row / row.sum())
    priors = np.log(np.bincount(train.labels, minlength=num_classes) / len(train))
    correct = 0
    for text, label in zip(validation.texts, validation.labels):
        columns = [index[f] for f in features(text) if f in index]
        scores = priors + log_probs[:, columns].sum(axis=1)
        correct += int(np.argmax(scores) == label)
    return correct / len(validation)


def tfidf_linear_svc_accuracy(train, validation):
    """TF-IDF of word uni- and bigrams (sublinear tf) + LinearSVC, fitted on `train`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LinearSVC().fit(vectorizer.fit_transform(train.texts), train.labels)
    return float(np.mean(classifier.predict(vectorizer.transform(validation.texts)) == np.asarray(validation.labels)))


def peer_rows(train, validation, seed):
    """One row per installed peer: its validation accuracy and the seconds it took to fit and score."""
    peers = [("tfidf + linear_svc (peer)", lambda: tfidf_linear_svc_accuracy(train, validation)),
             ("naive_bayes_bigram (peer)", lambda: naive_bayes_bigram_accuracy(train, validation))]
    if fasttext_peer.available():
        peers.append(("fasttext bigrams (peer)", lambda: fasttext_peer.accuracy(train, validation, seed=seed)[0]))
    rows = []
    for name, measure in peers:
        started = time.perf_counter()
        rows.append({"model": name, "validation_accuracy": measure(),
                     "train_seconds": round(time.perf_counter() - started, 1)})
    return rows
