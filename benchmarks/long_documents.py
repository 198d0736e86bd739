"""Accuracy on long documents whose label depends on text past position 64, built from the data at hand.

    python -m benchmarks.long_documents [--tasks needle spread] [--models lstm_classifier cnn_classifier ...]
        [--lengths 64 128] [--documents N] [--seeds 1337] [--out benchmarks/results/long_documents.json]

Two tasks, each a JSONL corpus written to a scratch folder (never into the
repository) from rt-polarity and tinyshakespeare in ../shared/data:

- `needle`: one rt-polarity review placed at a uniformly random depth inside
  ~150 words of consecutive tinyshakespeare lines (~200 tokens in all); the
  label is the review's. Most documents hide their review past the 64th token.
- `spread`: three reviews, two of one polarity and one of the other, each at
  a random depth of the same filler; the label is the majority. No window
  short of the whole text holds the evidence.

Every model is trained as `zoo train NAME --data CORPUS` does (its
registered defaults, the window fitted to the training split) and again with
each `--lengths` value set by hand; the peers are fitted on the same seeded
90/10 split: TF-IDF of word uni- and bigrams with sublinear tf + LinearSVC,
multinomial Naive Bayes over binarized bigrams and fastText with word bigrams.
Rows give validation accuracy (the text cut at the window), the same model
reading each text whole (`predict_documents`: windows over the whole text,
probabilities averaged), the window and the share of training texts it cuts,
training seconds and the model's size.

Writes the JSON (default benchmarks/results/long_documents.json) and prints a markdown table.
"""

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np

from benchmarks.accuracy_peers import peer_rows
from zoo.versions import library_versions

RESULTS = pathlib.Path(__file__).parent / "results"
# Filler around the evidence: ~200 tokens a document, so a 64-token window misses most of it and a
# window fitted to the data holds it whole. (With 400 words and 1,800 training documents every learner,
# TF-IDF + LinearSVC included, stayed at chance: 45-53%.)
FILLER_WORDS = 150
SPREAD_REVIEWS = (2, 1)  # majority, minority
DOCUMENTS = {"needle": 6000, "spread": 3000}  # each review used once: rt-polarity has 10,662


def shakespeare_lines(data_dir=None):
    """tinyshakespeare's non-empty lines that are not a speaker's name (`ROMEO:`)."""
    from zoo.data import default_data_dir

    path = pathlib.Path(data_dir or default_data_dir()) / "tinyshakespeare" / "input.txt"
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.endswith(":")]


def _filler(lines, rng, words=FILLER_WORDS):
    """Consecutive lines from a random start until `words` words: a list of lines."""
    start = int(rng.integers(len(lines)))
    chosen, count = [], 0
    while count < words:
        line = lines[(start + len(chosen)) % len(lines)]
        chosen.append(line)
        count += len(line.split())
    return chosen


def _insert(filler, passages, rng):
    """`filler`'s lines with each passage placed between two lines at a random depth, joined with spaces."""
    lines = list(filler)
    for passage in passages:
        lines.insert(int(rng.integers(len(lines) + 1)), passage)
    return " ".join(lines)


def build_task(task, reviews, labels, lines, size, seed=0):
    """`size` `{"text", "label"}` documents of `task` ("needle" or "spread"), label names "neg"/"pos".

    Each review is used at most once in the corpus, so no validation document shares its evidence with
    a training document (the filler repeats; it carries no label).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    unused = {label: list(rng.permutation(np.flatnonzero(labels == label))) for label in (0, 1)}

    def draw(label, count):
        if len(unused[label]) < count:
            raise ValueError(f"{task}: {size} documents need more reviews than the data has; ask for fewer")
        return [reviews[int(unused[label].pop())] for _ in range(count)]

    documents = []
    for _ in range(size):
        label = int(rng.integers(2))
        if task == "needle":
            passages = draw(label, 1)
        elif task == "spread":
            majority, minority = SPREAD_REVIEWS
            passages = draw(label, majority) + draw(1 - label, minority)
            rng.shuffle(passages)
        else:
            raise ValueError(f"task: expected 'needle' or 'spread', got {task!r}")
        documents.append({"text": _insert(_filler(lines, rng), passages, rng), "label": ("neg", "pos")[label]})
    return documents


def write_task(path, documents):
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(json.dumps(document) + "\n" for document in documents)
    return path


def model_row(name, corpus, seed, validation, sequence_length=None, epochs=10):
    """Train `name` on `corpus` as `zoo train` does; `sequence_length` None leaves the window to the data.
    Also scores the trained model reading each validation text whole (`predict_documents`)."""
    from zoo.training import train_classifier

    overrides = {} if sequence_length is None else {"sequence_length": sequence_length}
    with tempfile.TemporaryDirectory() as scratch:
        result = train_classifier(name, str(corpus), out_dir=scratch, seed=seed, epochs=epochs, verbose=2,
                                  **overrides)
        size = (pathlib.Path(scratch) / "model.keras").stat().st_size
    started = time.perf_counter()
    whole = result.model.predict_documents(list(validation.texts))
    documents_seconds = time.perf_counter() - started
    documents_accuracy = float(np.mean(np.argmax(whole, axis=-1) == np.asarray(validation.labels)))
    window = result.report["data"].get("window", {})
    return {"model": name, "setting": "default" if sequence_length is None else f"sequence_length={sequence_length}",
            "validation_accuracy": result.validation.accuracy,
            "documents_accuracy": documents_accuracy, "documents_seconds": round(documents_seconds, 2),
            "sequence_length": int(result.model.sequence_length),
            "truncated_share": window.get("truncated_share"),
            "branch_alone_accuracy": result.report.get("parts", {}).get("branch"),
            "deep_alone_accuracy": result.report.get("parts", {}).get("deep"),
            "epochs_run": result.report["epochs_run"], "train_seconds": result.report["train_seconds"],
            "model_bytes": size}


def measure(tasks, models, lengths, *, documents=None, seeds=(1337,), epochs=10, scratch=None, data_dir=None):
    import zoo

    scratch = pathlib.Path(scratch or tempfile.mkdtemp(prefix="long-documents-"))
    scratch.mkdir(parents=True, exist_ok=True)
    reviews = zoo.load_texts(None if data_dir is None else pathlib.Path(data_dir) / "rt-polarity")
    lines = shakespeare_lines(data_dir)
    rows = []
    for task in tasks:
        corpus = write_task(scratch / f"{task}.jsonl", build_task(task, reviews.texts, reviews.labels, lines,
                                                                  documents or DOCUMENTS[task], seed=0))
        dataset = zoo.load_texts(str(corpus))
        for seed in seeds:
            train, validation = dataset.split(0.1, seed)
            for row in peer_rows(train, validation, seed):
                rows.append({"task": task, "seed": seed, **row})
                print(rows[-1], flush=True)
            for name in models:
                for length in (None, *lengths):
                    rows.append({"task": task, "seed": seed, **model_row(name, corpus, seed, validation, length, epochs)})
                    print(rows[-1], flush=True)
    return {"documents": documents or DOCUMENTS, "tasks": list(tasks), "rows": rows, "versions": library_versions()}


def markdown_table(results):
    def percent(value):
        return "-" if value is None else f"{value:.1%}"

    lines = ["| task | seed | model | setting | window (cut) | validation accuracy | branch alone | deep alone "
             "| read whole (predict_documents) | epochs | train s | size MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        window = (f"{row['sequence_length']} ({row['truncated_share']:.0%})" if row.get("truncated_share") is not None
                  else str(row.get("sequence_length", "whole text")))
        size = f"{row['model_bytes'] / 2**20:.1f}" if "model_bytes" in row else "-"
        lines.append(f"| {row['task']} | {row['seed']} | {row['model']} | {row.get('setting', '-')} | {window} | "
                     f"{row['validation_accuracy']:.1%} | {percent(row.get('branch_alone_accuracy'))} | "
                     f"{percent(row.get('deep_alone_accuracy'))} | "
                     f"{format(row['documents_accuracy'], '.1%') if 'documents_accuracy' in row else '-'} | "
                     f"{row.get('epochs_run', '-')} | {row['train_seconds']} | "
                     f"{size} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="*", default=["needle", "spread"], choices=["needle", "spread"])
    parser.add_argument("--models", nargs="*", default=["lstm_classifier", "cnn_classifier", "transformer_classifier"])
    parser.add_argument("--lengths", nargs="*", type=int, default=[64, 128],
                        help="hand-set sequence_length values trained besides the default")
    parser.add_argument("--documents", type=int, help="documents per task (default: needle 6000, spread 3000)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1337])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", help="the data folder holding rt-polarity/ and tinyshakespeare/ (default ../shared/data)")
    parser.add_argument("--out", default=str(RESULTS / "long_documents.json"))
    args = parser.parse_args(argv)
    results = measure(args.tasks, args.models, args.lengths, documents=args.documents, seeds=args.seeds,
                      epochs=args.epochs, data_dir=args.data)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(markdown_table(results))


if __name__ == "__main__":
    main()
