"""zoo's speed benchmark: every text classifier on every runtime, training speed, GPT-2.

    python -m benchmarks [--quick] [--models NAME ...] [--out DIR] [--models-root saved_models]
    zoo bench [same arguments]

For each classifier: a trained model (loaded from `<models-root>/<name>/model.keras`
when there is one, else trained with its defaults by `zoo.training.train_classifier`),
exported with `zoo.export.export` (SavedModel + four LiteRT files), then
measured by `benchmarks.classifier_speed` against its peers (in rounds, every
runtime but zoo's TensorFlow paths alone in a fresh process each round). Then
`benchmarks.gpt2.run`: GPT-2 against its peers, every side in its own process.

--quick checks the harness in about two minutes: lstm_classifier only, tiny
(vocabulary 2,000, width 32, 32 tokens), one epoch on a 2,000-example slice
of rt-polarity, few timed calls, and gpt2_tiny's quick run (--no-gpt2 skips it).
Its numbers say nothing about the full models.

Writes `<out>/speed.json` (quick: `speed_quick.json`, so full results are never
overwritten), two PNG plots beside it, and the markdown tables: into
benchmarks/README.md between its results markers (a full run into the default
folder), else into `<out>/speed.md` / `<out>/speed_quick.md`.
`python -m benchmarks.report JSON` regenerates tables and plots from a results file.
"""

import argparse
import json
import os
import pathlib
import tempfile
import time
import traceback

import numpy as np

from benchmarks import classifier_speed, gpt2, limits, report

RESULTS = pathlib.Path(__file__).parent / "results"
README = pathlib.Path(__file__).parent / "README.md"
QUICK_OVERRIDES = dict(vocabulary_size=2000, embedding_dim=32, hidden_dim=32, sequence_length=32)
QUICK_EXAMPLES = 2000
QUICK_MODELS = ("lstm_classifier",)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _check_models(parser, args.models or ())
    stem = "speed_quick" if args.quick else "speed"
    out = pathlib.Path(args.out) if args.out else RESULTS
    results = run(args.models, quick=args.quick, models_root=args.models_root, gpt2_shape=args.gpt2,
                  data=args.data)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2))
    # Only a full run into the default folder speaks for benchmarks/README.md.
    default_readme = README if not (args.quick or args.out) else out / f"{stem}.md"
    readme = pathlib.Path(args.readme) if args.readme else default_readme
    written = report.write_report(json_path, readme)
    print(report.markdown(results))
    for path in [json_path, *written]:
        print(f"wrote {path}")
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few calls: checks the harness (~2 min)")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="classifiers to measure (default: every registered text classifier; "
                             f"quick: {', '.join(QUICK_MODELS)})")
    parser.add_argument("--models-root", metavar="DIR",
                        help="load DIR/<name>/model.keras when present instead of training")
    parser.add_argument("--data", help="labeled text to train on (default rt-polarity)")
    parser.add_argument("--gpt2", default=None, metavar="SHAPE",
                        help="GPT-2 shape to run (default gpt2_small; quick: gpt2_tiny)")
    parser.add_argument("--no-gpt2", dest="gpt2", action="store_const", const="", help="skip GPT-2")
    parser.add_argument("--out", metavar="DIR", help=f"results folder (default {RESULTS})")
    parser.add_argument("--readme", metavar="FILE",
                        help="markdown file whose results markers get the tables (default: "
                             "benchmarks/README.md for a full run into the default folder, else <out>/<stem>.md)")
    return parser


def _check_models(parser, models):
    """Unknown names fail now, with close matches, not after an hour of training."""
    import zoo

    for name in models:
        try:
            task = zoo.model_info(name).task
        except KeyError as error:
            parser.error(error.args[0])
        if task != "text-classification":
            parser.error(f"{name} is a {task} model; --models takes text classifiers (GPT-2: --gpt2 SHAPE)")


def run(models=None, quick=False, models_root=None, gpt2_shape=None, data=None):
    """The results dict: machine facts, per-classifier measurements, GPT-2."""
    import zoo

    started = time.perf_counter()
    models = list(models or (QUICK_MODELS if quick else zoo.list_models(task="text-classification")))
    gpt2_shape = ("gpt2_tiny" if quick else "gpt2_small") if gpt2_shape is None else gpt2_shape
    settings = {
        "batch_sizes": [1, 32],
        "warmup_calls": 2 if quick else 5,
        "timed_calls": 10 if quick else 40,
        "rounds": 2 if quick else 3,
        "training_steps": 5 if quick else 30,
        "training_warmup_steps": 2 if quick else 5,
        "threads": classifier_speed.THREADS,
    }
    results = {"mode": "quick" if quick else "full", "date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "machine": limits.machine(), "settings": settings, "classifiers": {}}
    # The limits the latencies are held against, measured in this run, before the models load.
    results["limits"] = {"memory_bandwidth": limits.memory_bandwidth(256 if quick else 1024),
                         "matmul": limits.matmul_gflops(1024 if quick else 2048)}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as scratch:
        scratch = pathlib.Path(scratch)
        slice_path = _write_quick_slice(scratch, data) if quick else None
        for name in models:
            model_started = time.perf_counter()
            print(f"== {name}", flush=True)
            try:
                entry = _benchmark_classifier(name, quick, models_root, data, slice_path, scratch / name, settings,
                                              results["limits"])
            except Exception as error:  # one broken model must not lose the others' results
                traceback.print_exc()
                entry = {"error": classifier_speed.describe_error(error)}
            entry["seconds"] = round(time.perf_counter() - model_started, 1)
            results["classifiers"][name] = entry
    if gpt2_shape:
        print(f"== {gpt2_shape}", flush=True)
        try:
            settings = dict(rounds=1, steps=2, warmup_steps=1, new_tokens=8, repeats=1) if quick else {}
            results["gpt2"] = gpt2.run(gpt2_shape, **settings)
            results["gpt2"].pop("machine", None)  # the same machine: its facts are at the top
        except Exception as error:
            traceback.print_exc()
            results["gpt2"] = {"shape": gpt2_shape, "error": classifier_speed.describe_error(error)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _benchmark_classifier(name, quick, models_root, data, slice_path, scratch, settings, machine_limits):
    import zoo.export
    from zoo.data import load_texts
    from zoo.saving import held_out_split, load_model
    from zoo.training import train_classifier

    existing = pathlib.Path(models_root) / name / "model.keras" if models_root else None
    if existing is not None and existing.is_file():
        model_path, source = existing, f"loaded {existing}"
        model = load_model(model_path)
        training_report = None
    else:
        overrides = QUICK_OVERRIDES if quick else {}
        result = train_classifier(name, slice_path or data, out_dir=scratch / "model", epochs=1 if quick else 10,
                                  verbose=2, **overrides)
        model, model_path, training_report = result.model, result.model_path, result.report
        source = (f"trained 1 epoch on a {QUICK_EXAMPLES}-example slice with {overrides}" if quick
                  else f"trained with defaults ({result.report['epochs_run']} epochs, best {result.best_epoch})")
    # A model without its train_report.json is measured on the data's default seeded split.
    train, validation = held_out_split(model_path) or load_texts(data, class_names=model.class_names).split()
    exported = zoo.export.export(model_path, root=scratch / "serving", name=name, version=1,
                                 validation_data=validation, calibration_texts=train.texts)
    entry = {"source": source, "export_seconds": exported.report["seconds"]}
    if training_report is not None:
        entry["train_report"] = {key: training_report[key] for key in
                                 ("epochs_run", "best_epoch", "train_seconds", "train_examples_per_second")}
    entry.update(classifier_speed.measure_classifier(
        model, exported.path, validation, train, scratch / "onnx",
        batch_sizes=settings["batch_sizes"], warmup=settings["warmup_calls"], repeats=settings["timed_calls"],
        rounds=settings["rounds"],
        training_steps=settings["training_steps"], training_warmup_steps=settings["training_warmup_steps"],
        threads=settings["threads"], machine_limits=machine_limits,
    ))
    entry["artifacts"]["keras"]["bytes"] = model_path.stat().st_size
    for row in entry["inference"]:
        print(f"  {row['runtime']:<36} batch {row['batch_size']:>2}: p50 {row['p50_ms']:8.2f} ms, "
              f"{row['examples_per_second']:9.0f} examples/s", flush=True)
    return entry


def _write_quick_slice(scratch, data):
    """A seeded slice of the dataset as JSONL, so `train_classifier` and the export read the same split."""
    from zoo.data import load_texts

    dataset = load_texts(data)
    order = np.random.default_rng(0).permutation(len(dataset))[:QUICK_EXAMPLES]
    path = scratch / "quick_slice.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for index in order:
            label = dataset.class_names[dataset.labels[index]]
            file.write(json.dumps({"text": dataset.texts[index], "label": label}, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    raise SystemExit(main())
