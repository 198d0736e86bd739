"""Validation accuracy of every registered classifier, with its defaults, on rt-polarity.

Each model is trained exactly as `zoo train NAME` does (same seeded 90/10
split, same defaults), next to a multinomial Naive Bayes over binarized
unigrams + bigrams (Wang & Manning 2012's MNB-bi, alpha=1) and fastText with
word bigrams (`benchmarks.fasttext_peer`), each fitted on the same split: the
published figures are 10-fold cross-validation means, so the peer on
the identical split is what tells whether a split is easy or hard.

    python -m benchmarks.classifier_accuracy [--models lstm_classifier ...] [--seeds 1337 ...]
        [--keep saved_models]

With --keep ROOT the trained models stay in ROOT/<name> (as `zoo train` leaves
them) for later export; otherwise they go to a temporary folder.

Writes benchmarks/results/classifier_accuracy.json and prints a markdown table; for each
family beside its accuracy, that of its Naive Bayes branch alone and of its network alone
(the train report's `parts`).
"""

import argparse
import json
import math
import pathlib
import tempfile

import numpy as np

from benchmarks import fasttext_peer
from zoo.versions import library_versions

RESULTS = pathlib.Path(__file__).parent / "results"
PUBLISHED = {"NBSVM-bi (Wang & Manning 2012)": 0.794, "MNB-bi (Wang & Manning 2012)": 0.790, "CNN-rand (Kim 2014)": 0.761}


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


def main(argv=None):
    import zoo
    from zoo.training import train_classifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=zoo.list_models(task="text-classification"))
    parser.add_argument("--seeds", nargs="*", type=int, default=[1337])
    parser.add_argument("--data", help="dataset path (default rt-polarity)")
    parser.add_argument("--out", default=str(RESULTS / "classifier_accuracy.json"))
    parser.add_argument("--keep", metavar="ROOT", help="keep trained models in ROOT/<name> (last seed wins)")
    args = parser.parse_args(argv)

    dataset = zoo.load_texts(args.data)
    rows = []
    for seed in args.seeds:
        train, validation = dataset.split(0.1, seed)
        rows.append(
            {"model": "naive_bayes_bigram (peer)", "seed": seed,
             "validation_accuracy": naive_bayes_bigram_accuracy(train, validation)}
        )
        print(rows[-1], flush=True)
        if fasttext_peer.available():
            rows.append({"model": "fasttext bigrams (peer)", "seed": seed,
                         "validation_accuracy": fasttext_peer.accuracy(train, validation, seed=seed)[0]})
            print(rows[-1], flush=True)
        for name in args.models:
            with tempfile.TemporaryDirectory() as scratch:
                out_dir = pathlib.Path(args.keep) / name if args.keep else scratch
                result = train_classifier(name, args.data, out_dir=out_dir, seed=seed, verbose=2)
            rows.append(
                {"model": name, "seed": seed, "validation_accuracy": result.validation.accuracy,
                 "best_epoch": result.best_epoch, "epochs_run": result.report["epochs_run"],
                 "train_seconds": result.report["train_seconds"],
                 "parameters": int(result.model.count_params()),
                 # The Naive Bayes branch alone and the network alone (the logits without the branch):
                 # whether the family's network adds anything to the branch.
                 "branch_alone_accuracy": result.report.get("parts", {}).get("branch"),
                 "deep_alone_accuracy": result.report.get("parts", {}).get("deep")}
            )
            print(rows[-1], flush=True)

    validation_size = int(round(len(dataset) * 0.1))
    output = {
        "dataset": dataset.source,
        "validation_examples": validation_size,
        # One binomial standard error at 77%: the noise of a single split.
        "standard_error": math.sqrt(0.77 * 0.23 / validation_size),
        "published_10_fold_cv": PUBLISHED,
        "results": rows,
        "versions": library_versions(),
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(output, indent=2))
    print(markdown_table(output))


def markdown_table(output):
    """One row per model and seed; the branch-alone and deep-alone columns where the run recorded them
    (runs from before the train report had `parts` did not)."""
    def percent(value):
        return "" if value is None else f"{value:.1%}"

    parts = any("branch_alone_accuracy" in row for row in output["results"])
    header = ["model", "seed", "validation accuracy", *(["branch alone", "deep alone"] if parts else []),
              "best epoch / run", "train seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in output["results"]:
        cells = [row["model"], row["seed"], f"{row['validation_accuracy']:.1%}"]
        if parts:
            cells += [percent(row.get("branch_alone_accuracy")), percent(row.get("deep_alone_accuracy"))]
        cells += [f"{row.get('best_epoch', '')}{'/' + str(row['epochs_run']) if 'epochs_run' in row else ''}",
                  row.get("train_seconds", "")]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
