"""Validation accuracy of every registered classifier, with its defaults, on rt-polarity.

Each model is trained exactly as `zoo train NAME` does (same seeded 90/10
split, same defaults), next to the peers of `benchmarks.accuracy_peers`
(TF-IDF + LinearSVC, Naive Bayes bigrams, fastText bigrams), each fitted on
the same split.

    python -m benchmarks.classifier_accuracy [--models lstm_classifier ...] [--seeds 1337 ...]
        [--keep saved_models]

With --keep ROOT the trained models stay in ROOT/<name> (as `zoo train` leaves
them) for later export; otherwise they go to a temporary folder.

Writes benchmarks/results/classifier_accuracy.json and prints a markdown table; for each
family beside its accuracy, that of its Naive Bayes branch alone and of its network alone
(the train report's `parts`), the window the data chose with the share of training texts it cuts,
the training time and the model file's size.
"""

import argparse
import json
import math
import pathlib
import tempfile

from benchmarks.accuracy_peers import peer_rows
from zoo.versions import library_versions

RESULTS = pathlib.Path(__file__).parent / "results"
PUBLISHED = {"NBSVM-bi (Wang & Manning 2012)": 0.794, "MNB-bi (Wang & Manning 2012)": 0.790, "CNN-rand (Kim 2014)": 0.761}


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
        for row in peer_rows(train, validation, seed):
            rows.append({**row, "seed": seed})
            print(rows[-1], flush=True)
        for name in args.models:
            with tempfile.TemporaryDirectory() as scratch:
                out_dir = pathlib.Path(args.keep) / name if args.keep else scratch
                result = train_classifier(name, args.data, out_dir=out_dir, seed=seed, verbose=2)
                model_bytes = (pathlib.Path(out_dir) / "model.keras").stat().st_size
            window = result.report["data"].get("window", {})
            rows.append(
                {"model": name, "seed": seed, "validation_accuracy": result.validation.accuracy,
                 "best_epoch": result.best_epoch, "epochs_run": result.report["epochs_run"],
                 "train_seconds": result.report["train_seconds"],
                 "parameters": int(result.model.count_params()), "model_bytes": model_bytes,
                 "sequence_length": int(result.model.sequence_length),
                 "truncated_share": window.get("truncated_share"),
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
    """One row per model and seed; the branch-alone and deep-alone columns, and the window with its
    truncation share and the model's size, where the run recorded them (older runs did not)."""
    def percent(value):
        return "" if value is None else f"{value:.1%}"

    def window(row):
        if "sequence_length" not in row:
            return ""
        cut = row.get("truncated_share")
        return str(row["sequence_length"]) + ("" if cut is None else f" ({cut:.0%})")

    parts = any("branch_alone_accuracy" in row for row in output["results"])
    sizes = any("sequence_length" in row for row in output["results"])
    header = ["model", "seed", "validation accuracy", *(["branch alone", "deep alone"] if parts else []),
              *(["window (cut)"] if sizes else []), "best epoch / run", "train seconds",
              *(["size MB"] if sizes else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in output["results"]:
        cells = [row["model"], row["seed"], f"{row['validation_accuracy']:.1%}"]
        if parts:
            cells += [percent(row.get("branch_alone_accuracy")), percent(row.get("deep_alone_accuracy"))]
        if sizes:
            cells.append(window(row))
        cells += [f"{row.get('best_epoch', '')}{'/' + str(row['epochs_run']) if 'epochs_run' in row else ''}",
                  row.get("train_seconds", "")]
        if sizes:
            cells.append(f"{row['model_bytes'] / 2**20:.1f}" if "model_bytes" in row else "")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
