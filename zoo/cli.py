"""`zoo` command line: parses arguments and calls the library, nothing more."""

import argparse
import json
import os
import pathlib
import sys
import warnings


def main(argv=None):
    parser = _build_parser()
    args = parser.parse_args(argv)
    # Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module="keras")
    from zoo.data import DataError

    try:
        return args.run(args) or 0
    except (DataError, KeyError, TypeError, FileNotFoundError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"zoo {args.command}: error: {message}", file=sys.stderr)
        return 2


def _build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="Text models whose exports deploy.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("list", help="list registered models")
    command.add_argument("pattern", nargs="?", help="shell-style pattern, e.g. '*lstm*'")
    command.add_argument("--task", help="only models of this task")
    command.set_defaults(run=_list)

    command = commands.add_parser("info", help="show a model's spec and default config")
    command.add_argument("name")
    command.set_defaults(run=_info)

    command = commands.add_parser("train", help="train a registered model on labeled text")
    command.add_argument("name")
    _add_data_arguments(command)
    command.add_argument("--epochs", type=int, default=10)
    command.add_argument("--batch-size", type=int, default=32)
    command.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    command.add_argument("--out", help="output folder (default saved_models/NAME)")
    command.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. hidden_dim=32"
    )
    command.set_defaults(run=_train)

    command = commands.add_parser("evaluate", help="accuracy, per-class P/R/F1 and confusion matrix")
    command.add_argument("model", help=".keras file, its folder, or a registered name trained into saved_models/")
    _add_data_arguments(command)
    command.add_argument(
        "--split", choices=("all", "train", "validation"), default="all", help="which part of the seeded split to use"
    )
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(run=_evaluate)

    command = commands.add_parser("predict", help="label and probability for each text")
    command.add_argument("model", help=".keras file, its folder, or a registered name trained into saved_models/")
    command.add_argument("texts", nargs="+", metavar="TEXT")
    command.add_argument("--json", action="store_true", help="print one JSON object per text")
    command.set_defaults(run=_predict)
    return parser


def _add_data_arguments(command):
    command.add_argument("--data", help="CSV/TSV/JSONL file or folder (default: rt-polarity in ../shared/data)")
    command.add_argument("--text-column", default="text")
    command.add_argument("--label-column", default="label")
    command.add_argument("--encoding", help="file encoding (default: try utf-8, cp1252, latin-1)")
    command.add_argument("--validation-fraction", type=float, default=0.1)
    command.add_argument("--seed", type=int, default=1337)


def _list(args):
    import zoo

    names = zoo.list_models(args.pattern, task=args.task)
    width = max((len(name) for name in names), default=4)
    for name in names:
        spec = zoo.model_info(name)
        print(f"{name:<{width}}  {spec.task:<20}  {spec.description}")


def _info(args):
    import zoo

    print(json.dumps(zoo.model_info(args.name).to_dict(), indent=2))


def _parse_overrides(pairs):
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a bare string such as punctuation=strip
    return overrides


def _train(args):
    from zoo.training import train_classifier

    result = train_classifier(
        args.name,
        args.data,
        out_dir=args.out,
        text_column=args.text_column,
        label_column=args.label_column,
        encoding=args.encoding,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        patience=args.patience,
        **_parse_overrides(args.set),
    )
    report, history = result.report, result.history
    best = result.best_epoch - 1
    print()
    print(f"data        {report['data']['source']} ({report['data']['encoding']}, "
          f"{report['data']['train_examples']} train / {report['data']['validation_examples']} validation)")
    print(f"epochs      {report['epochs_run']} run, best {result.best_epoch}")
    print(f"{'':12}{'loss':>8}  {'accuracy':>8}")
    print(f"{'train':12}{history['loss'][best]:8.4f}  {history['accuracy'][best]:8.4f}")
    print(f"{'validation':12}{history['val_loss'][best]:8.4f}  {history['val_accuracy'][best]:8.4f}")
    print(f"time        {result.seconds:.1f} s ({report['train_examples_per_second']:.0f} examples/s)")
    print(f"saved       {result.model_path}")
    print()
    print(result.validation.format())
    print(f"\nvalidation accuracy: {result.validation.accuracy:.4f}")


def _load(model):
    import keras

    import zoo  # noqa: F401  (registers zoo layers for deserialization)
    from zoo.training import MODEL_FILENAME

    path = pathlib.Path(model)
    if not path.exists() and not path.suffix:
        path = pathlib.Path("saved_models") / model
    if path.is_dir():
        path = path / MODEL_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model there (train one with `zoo train NAME`)")
    return keras.saving.load_model(path, safe_mode=True)


def _evaluate(args):
    from zoo.data import load_texts
    from zoo.evaluation import evaluate_classifier

    classifier = _load(args.model)
    dataset = load_texts(
        args.data, text_column=args.text_column, label_column=args.label_column, encoding=args.encoding,
        class_names=classifier.class_names,
    )
    if args.split != "all":
        train, validation = dataset.split(args.validation_fraction, args.seed)
        dataset = train if args.split == "train" else validation
    report = evaluate_classifier(classifier, dataset)
    if args.json:
        print(json.dumps(dict(report.to_dict(), source=dataset.source, split=args.split), indent=2))
    else:
        print(f"{dataset.source} ({dataset.encoding}, split: {args.split})")
        print(report.format())


def _predict(args):
    classifier = _load(args.model)
    for text, (label, probability) in zip(args.texts, classifier.predict_labels(args.texts)):
        if args.json:
            print(json.dumps({"text": text, "label": label, "probability": round(probability, 6)}))
        else:
            print(f"{label}\t{probability:.4f}\t{text}")


if __name__ == "__main__":
    sys.exit(main())
