"""Micro and macro F1 of the multi-label classifiers on "who speaks in this passage?", next to TF-IDF + LinearSVC.

There is no multi-label corpus on disk, so one is built from tinyshakespeare
(read where it lies, never copied): the play text is cut into consecutive
speeches, non-overlapping windows of `--speeches` speeches become the texts
(speaker headings removed), and each window is tagged with the set of the
`--speakers` most frequent characters who speak in it: often none, sometimes
several, the labels correlated (characters share scenes) and rare (each on a
few percent of windows). Names the characters call each other, forms of
address and each play's vocabulary are the evidence. Adjacent windows of one
scene can land on both sides of the random split, as documents of one source
would; both sides of the comparison see the same split.

Splits: a seeded 20% is the test set; the rest is written to a JSONL file and
trained on exactly as `zoo train NAME --data FILE --label-column labels`
would (its own seeded 90/10 train/validation split, thresholds chosen on that
validation split). The figures that matter are the test set's; the
validation split's are reported too, but its thresholds were fitted there.
The peer, TF-IDF of word uni- and bigrams (sublinear tf) with one LinearSVC
per label (scikit-learn's OneVsRestClassifier), is fitted on the same train
split and scored on the same test set, at its own decision threshold (0) and
at per-label thresholds chosen on the same validation split by the same rule.

    python -m benchmarks.multi_label_accuracy [--models NAME ...] [--seeds 1337 ...]
        [--speeches 3] [--speakers 12] [--set KEY=VALUE ...] [--out FILE.json]

Prints a markdown table; `--out` also writes the figures as JSON.
"""

import argparse
import collections
import json
import pathlib
import re
import tempfile
import time

import numpy as np

SHAKESPEARE = pathlib.Path("tinyshakespeare") / "input.txt"


def speeches(text):
    """`(speaker, speech)` pairs of a play text laid out as "NAME:" heading lines and blank-line-separated speeches.

    A heading with no speech under it (tinyshakespeare has a few) is left out.
    """
    pairs = []
    for block in re.split(r"\n\s*\n", text):
        heading, _, speech = block.strip("\n").partition("\n")
        if heading.endswith(":") and speech.strip():
            pairs.append((heading[:-1].strip(), speech))
    return pairs


def speaker_windows(pairs, speeches_per_window=3, num_speakers=12):
    """`(rows, names)`: each row a `{"text", "labels"}` window, labels the sorted frequent speakers in it."""
    counts = collections.Counter(speaker for speaker, _ in pairs)
    names = sorted(speaker for speaker, _ in counts.most_common(num_speakers))
    rows = []
    for start in range(0, len(pairs) - speeches_per_window + 1, speeches_per_window):
        window = pairs[start : start + speeches_per_window]
        rows.append({"text": "\n".join(speech for _, speech in window),
                     "labels": sorted({speaker for speaker, _ in window} & set(names))})
    return rows, names


def write_jsonl(path, texts, labels, names):
    with open(path, "w", encoding="utf-8") as file:
        for text, row in zip(texts, labels):
            file.write(json.dumps({"text": text, "labels": [name for name, flag in zip(names, row) if flag]}) + "\n")
    return path


def peer_figures(train, validation, test):
    """TF-IDF + one-vs-rest LinearSVC: test reports at decision value 0 and at thresholds chosen on `validation`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    from zoo.evaluation import MultiLabelReport, best_f1_thresholds

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    classifier = OneVsRestClassifier(LinearSVC()).fit(vectorizer.fit_transform(train.texts), train.labels)
    seconds = time.perf_counter() - started
    decision = lambda dataset: classifier.decision_function(vectorizer.transform(dataset.texts))  # noqa: E731
    thresholds = best_f1_thresholds(validation.labels, decision(validation), default=0.0)
    test_scores = decision(test)
    untuned = MultiLabelReport.from_scores(test.labels, test_scores, test.class_names, np.zeros(len(thresholds)))
    tuned = MultiLabelReport.from_scores(test.labels, test_scores, test.class_names, thresholds)
    return untuned, tuned, seconds


def main(argv=None):
    import zoo
    from zoo.data import default_data_dir, load_texts
    from zoo.evaluation import evaluate_classifier
    from zoo.training import library_versions, train_classifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=zoo.list_models(task="multi-label-classification"))
    parser.add_argument("--seeds", nargs="*", type=int, default=[1337])
    parser.add_argument("--speeches", type=int, default=3, help="speeches per window (default 3)")
    parser.add_argument("--speakers", type=int, default=12, help="the most frequent speakers tagged (default 12)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value of every model, e.g. naive_bayes_buckets=0")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    overrides = {key: json.loads(value) for key, _, value in (pair.partition("=") for pair in args.set)}

    path = default_data_dir() / SHAKESPEARE
    rows, names = speaker_windows(speeches(path.read_text(encoding="utf-8")), args.speeches, args.speakers)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        dataset = load_texts(write_jsonl(scratch / "windows.jsonl", [row["text"] for row in rows],
                                         [[int(name in row["labels"]) for name in names] for row in rows], names),
                             label_column="labels", multi_label=True, class_names=names)
        for seed in args.seeds:
            rest, test = dataset.split(0.2, seed)
            trained_on = write_jsonl(scratch / f"train_{seed}.jsonl", rest.texts, rest.labels, names)
            train, validation = load_texts(trained_on, label_column="labels", multi_label=True,
                                           class_names=names).split(0.1, seed)
            untuned, tuned, seconds = peer_figures(train, validation, test)
            for label, report in (("tfidf_linear_svc (peer), at 0", untuned),
                                  ("tfidf_linear_svc (peer), thresholds tuned", tuned)):
                # Its scores are decision values, not probabilities: no "at 0.5" figures.
                figures = {key: value for key, value in report.to_dict().items() if key != "at_0.5"}
                results.append({"model": label, "seed": seed, "test": figures, "train_seconds": seconds})
                print(_row(results[-1]), flush=True)
            for name in args.models:
                result = train_classifier(name, trained_on, out_dir=scratch / name, label_column="labels", seed=seed,
                                          verbose=2, **overrides)
                report = evaluate_classifier(result.model, test)
                results.append({
                    "model": name, "seed": seed, "test": report.to_dict(),
                    "validation": result.validation.to_dict(), "best_epoch": result.best_epoch,
                    "epochs_run": result.report["epochs_run"], "train_seconds": result.report["train_seconds"],
                    "parameters": int(result.model.count_params()),
                })
                print(_row(results[-1]), flush=True)

    output = {
        "dataset": {"source": str(path), "speeches_per_window": args.speeches, "speakers": names,
                    "windows": len(dataset), "test_windows": len(test), "label_counts": dataset.class_counts(),
                    "windows_without_label": int((dataset.labels.sum(axis=1) == 0).sum())},
        "overrides": overrides,
        "results": results,
        "versions": library_versions(),
    }
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(output, indent=2))
    print(markdown_table(output))


def _row(result):
    test = result["test"]
    at_half = f" (at 0.5: {test['at_0.5']['micro_f1']:.3f} / {test['at_0.5']['macro_f1']:.3f})" if "at_0.5" in test else ""
    return (f"{result['model']} seed {result['seed']}: test micro-F1 {test['micro_f1']:.3f} macro-F1 "
            f"{test['macro_f1']:.3f}{at_half}, {result['train_seconds']:.1f} s")


def markdown_table(output):
    lines = ["| model | seed | test micro-F1 | test macro-F1 | at 0.5: micro / macro | validation micro / macro "
             "(thresholds fitted there) | best epoch / run | train seconds |", "|---|---|---|---|---|---|---|---|"]
    for row in output["results"]:
        test, validation = row["test"], row.get("validation")
        at_half = f"{test['at_0.5']['micro_f1']:.3f} / {test['at_0.5']['macro_f1']:.3f}" if "at_0.5" in test else ""
        lines.append(
            f"| {row['model']} | {row['seed']} | {test['micro_f1']:.3f} | {test['macro_f1']:.3f} | {at_half} | "
            + (f"{validation['micro_f1']:.3f} / {validation['macro_f1']:.3f}" if validation else "")
            + f" | {str(row.get('best_epoch', '')) + ('/' + str(row['epochs_run']) if 'epochs_run' in row else '')} "
            f"| {row['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
