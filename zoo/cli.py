"""`zoo` command line: parses arguments and calls the library, nothing more."""

import argparse
import contextlib
import json
import logging
import pathlib
import signal
import sys

from zoo import interrupts


def main(argv=None):
    # Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt (`interrupts.interrupted`) from here on, at start-up too: every
    # command ends on them with one line and the signal's exit status, after its clean-up ran.
    with interrupts.interruptible() as interrupt:
        command = _command_name(argv)
        try:
            return _main(argv)
        except KeyboardInterrupt as error:
            number = getattr(error, "signal_number", None) or interrupt.signal_number or signal.SIGINT
            what = "interrupted" if number == signal.SIGINT else f"stopped by {signal.Signals(number).name}"
            # What was half-written is already removed (or was never in place: files are renamed when whole).
            print(f"zoo {command}: error: {what}; nothing half-written was left", file=sys.stderr)
            return 128 + number


def _command_name(argv):
    """The subcommand's name for messages, before (or without) a full parse."""
    words = sys.argv[1:] if argv is None else list(argv)
    return next((word for word in words if not word.startswith("-")), "")


def _main(argv):
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        return _run(args)
    # The libraries' start-up and progress logs stay off stderr (zoo.quiet); --verbose keeps them.
    from zoo import quiet

    quiet.quiet_python_logs()
    with quiet.filtered_stderr():
        return _run(args)


def _run(args):
    from zoo.data import DataError
    from zoo.export import ExportError
    from zoo.extras import MissingExtraError

    try:
        with _warnings_shown(args.command):
            return args.run(args) or 0
    except MissingExtraError as error:
        # An optional runtime's extra is not installed: the message names it (zoo.extras).
        if args.debug:
            raise
        print(f"zoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        # A runtime-only install (zoo-runtime) has no TensorFlow stack: only exported files run there.
        print(f"zoo {args.command}: error: this command needs the full zoo install (TensorFlow, Keras): {error}",
              file=sys.stderr)
        return 2
    except (DataError, ExportError, KeyError, TypeError, FileNotFoundError, ValueError) as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"zoo {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - the CLI's one rule: one line, exit 2 (--debug shows the trace)
        if args.debug:
            raise
        print(f"zoo {args.command}: error: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _warnings_shown(command):
    """zoo's own warnings (a backup that cannot be resumed, a vocabulary learned again) as `zoo CMD: warning:`."""
    logger = logging.getLogger("zoo")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"zoo {command}: warning: %(message)s"))
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _one_line(message, limit=500):
    """The first line of an error (Keras and TensorFlow errors run to many lines)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if lines and lines[0] == "in user code:":
        # A traced function's error: the traceback comes first, the error last.
        lines = [line for line in lines if "Error:" in line][-1:] or lines
    return (lines[0] if lines else "")[:limit]


def _build_parser():
    from zoo.runtime.generator import KERAS_SAMPLERS

    parser = argparse.ArgumentParser(prog="zoo", description="Text models whose exports deploy.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's, LiteRT's and the converters' own logs and warnings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("list", help="list registered models")
    command.add_argument("pattern", nargs="?", help="shell-style pattern, e.g. '*lstm*'")
    command.add_argument("--task", help="only models of this task")
    command.set_defaults(run=_list)

    command = commands.add_parser("info", help="show a model's spec and default config")
    command.add_argument("name")
    command.set_defaults(run=_info)

    command = commands.add_parser(
        "train", help="train a classifier on labeled text, or fine-tune a causal LM on a corpus"
    )
    command.add_argument("name")
    _add_data_arguments(command)
    _add_label_separator_argument(command)
    command.add_argument("--epochs", type=int, help="default 10 for classifiers, 1 for language models")
    command.add_argument("--batch-size", type=int, help="default 32 for classifiers, 8 for language models")
    command.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    command.add_argument("--drop-duplicates", action="store_true",
                         help="classifiers: leave validation texts that also occur in the training split out of "
                              "validation (they are counted either way)")
    command.add_argument("--out", help="output folder (default saved_models/NAME)")
    command.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. hidden_dim=32"
    )
    command.add_argument("--strategy", choices=("auto", "mirrored", "multi_worker"),
                         help="train with tf.distribute (multi_worker reads TF_CONFIG); --batch-size is the global batch")
    command.set_defaults(run=_train)

    command = commands.add_parser(
        "evaluate", help="accuracy, per-class P/R/F1 and confusion matrix (multi-label: micro/macro F1, per-label P/R/F1)"
    )
    command.add_argument("model", help=".keras file, its folder, or a registered name trained into saved_models/")
    _add_data_arguments(command, default_help="the data the model was trained on, else rt-polarity",
                        split_help="the model's training run's, else")
    _add_label_separator_argument(command)
    command.add_argument(
        "--split", choices=("all", "train", "validation"), default="all",
        help="which part of the training run's seeded split to use (train/validation need the data it was "
             "trained on, unchanged)"
    )
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--confusion-png", metavar="FILE", help="also draw the confusion matrix into FILE (PNG)")
    command.set_defaults(run=_evaluate)

    command = commands.add_parser("export", help="SavedModel for TF Serving + builtin-only LiteRT files, validated")
    command.add_argument("model", help=".keras file, its folder, or a registered name trained into saved_models/")
    command.add_argument("--root", default="saved_models", help="TF Serving base path (default saved_models)")
    command.add_argument("--name", help="model name under ROOT (default: the model folder's name)")
    command.add_argument("--version", type=int, help="integer version (default: next free one)")
    command.add_argument(
        "--format",
        help="comma list of formats (saved_model, litert, onnx, litert_lm); default: every format of the model's "
             "task that serves it (classifiers: no litert_lm; language models: no onnx)",
    )
    command.add_argument(
        "--variants",
        help="comma list of variants besides float32, or 'none' (LiteRT: float16, dynamic_int8, int8, batch32; "
             "ONNX and LiteRT-LM: dynamic_int8). Default: all for classifiers, dynamic_int8 for language models",
    )
    command.add_argument("--cache-length", type=int,
                         help="language models: the LiteRT decoder's cache, the most tokens a generation holds "
                              "(default 256)")
    command.add_argument(
        "--prompt", action="append", help="language models: a validation prompt (repeat; default: built-in prompts)"
    )
    command.add_argument("--force", action="store_true", help="replace an existing version")
    _add_data_arguments(command, default_help="validation split the model was trained against",
                        split_help="the model's training run's (for its data), else")
    _add_label_separator_argument(command)
    command.set_defaults(run=_export)

    command = commands.add_parser("generate", help="continue prompts with a trained causal LM")
    command.add_argument(
        "model", help=".keras file, its folder, a registered name trained into saved_models/, an exported .tflite "
                      "decoder or a .litertlm bundle"
    )
    command.add_argument("--prompt", action="append", required=True, help="repeat for a batch of prompts")
    command.add_argument("--max-length", type=int, default=64, help="total tokens, prompt included")
    command.add_argument("--sampler", choices=KERAS_SAMPLERS, default="greedy",
                         help="beam runs on Keras models only")
    command.add_argument("--temperature", type=float, default=1.0)
    command.add_argument("--top-k", type=int, default=10)
    command.add_argument("--top-p", type=float, default=0.9)
    command.add_argument("--num-beams", type=int, default=4)
    command.add_argument("--seed", type=int, help="an integer in [0, 2**32): reproducible sampling")
    command.add_argument("--json", action="store_true", help="one JSON object per prompt")
    command.set_defaults(run=_generate)

    command = commands.add_parser(
        "predict", help="label and probability for each text (multi-label: every label over its threshold)"
    )
    command.add_argument(
        "model", help=".keras file, its folder, a registered name trained into saved_models/, or an exported "
                      ".tflite or .onnx file"
    )
    command.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label (or --input)")
    command.add_argument("--json", action="store_true", help="print one JSON object per text")
    command.add_argument("--input", metavar="FILE", help="label every text of FILE (.jsonl, .csv, .tsv, else one text "
                                                         "per line; - for stdin) instead of TEXT arguments")
    command.add_argument("--output", metavar="FILE", default="-",
                         help="with --input: .jsonl, .csv or .tsv, or - for stdout (default); resumable")
    command.add_argument("--text-column", default="text", help="with --input: the texts' column or JSON field")
    command.add_argument("--id-column", default="id", help="with --input: the ids' column (else line numbers)")
    command.add_argument("--encoding", help="with --input: the file's encoding (default UTF-8)")
    command.add_argument("--batch-size", type=int, default=256, help="with --input: texts per batch")
    command.add_argument("--threads", type=int, help="with --input: worker threads (default: one per core)")
    command.add_argument("--probabilities", action="store_true", help="with --input: every class's probability too")
    command.add_argument("--overwrite", action="store_true", help="with --input: replace a finished --output")
    command.add_argument("--long-documents", action="store_true",
                         help="read each text whole (windows over it, probabilities averaged) instead of cut at the "
                              "model's window; one prediction per window")
    command.set_defaults(run=_predict)

    command = commands.add_parser("verify", help="check an exported version: sha256 of every file, sidecars vs models")
    command.add_argument("version_dir", help="an exported version folder, e.g. saved_models/lstm_classifier/1")
    command.set_defaults(run=_verify)

    # Options pass through untouched ('+' is no option prefix here) to the harness's own parser.
    command = commands.add_parser(
        "bench", prefix_chars="+", add_help=False, help="speed benchmarks (same arguments as python -m benchmarks)"
    )
    command.add_argument("args", nargs="*")
    command.set_defaults(run=_bench)
    return parser


def _add_data_arguments(command, default_help="rt-polarity in ../shared/data", split_help=None):
    """The data options; with `split_help`, --seed and --validation-fraction default to None (the training
    run's split, where the model has a report), as the help says."""
    command.add_argument("--data", help=f"CSV/TSV/JSONL file or folder (default: {default_help})")
    command.add_argument("--text-column", default="text")
    command.add_argument("--label-column", default="label")
    command.add_argument("--encoding", help="file encoding (default: try utf-8, cp1252, latin-1)")
    if split_help is None:
        command.add_argument("--validation-fraction", type=float, default=DEFAULT_SPLIT["validation_fraction"])
        command.add_argument("--seed", type=int, default=DEFAULT_SPLIT["seed"])
        return
    command.add_argument("--validation-fraction", type=float,
                         help=f"default: {split_help} {DEFAULT_SPLIT['validation_fraction']}")
    command.add_argument("--seed", type=int, help=f"default: {split_help} {DEFAULT_SPLIT['seed']}")


DEFAULT_SPLIT = {"validation_fraction": 0.1, "seed": 1337}


def _add_label_separator_argument(command):
    from zoo.data import LABEL_SEPARATOR

    command.add_argument("--label-separator", default=LABEL_SEPARATOR,
                         help=f"multi-label models: what separates a CSV/TSV field's labels (default {LABEL_SEPARATOR!r})")


def _list(args):
    # From the written-down registry: no TensorFlow import (zoo.catalog).
    from zoo import catalog

    entries = catalog.load()
    names = catalog.names(args.pattern, task=args.task, catalog=entries)
    width = max((len(name) for name in names), default=4)
    for name in names:
        print(f"{name:<{width}}  {entries[name]['task']:<26}  {entries[name]['description']}")


def _info(args):
    from zoo import catalog

    entry = catalog.info(args.name)
    print(json.dumps({key: entry[key] for key in ("name", "task", "family", "description", "default_config",
                                                  "test_config", "export_formats")}, indent=2))


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
    import zoo

    if zoo.model_info(args.name).task == "causal-lm":
        return _train_causal_lm(args)
    from zoo.training import train_classifier

    result = train_classifier(
        args.name,
        args.data,
        out_dir=args.out,
        text_column=args.text_column,
        label_column=args.label_column,
        label_separator=args.label_separator,
        encoding=args.encoding,
        epochs=10 if args.epochs is None else args.epochs,
        batch_size=32 if args.batch_size is None else args.batch_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        patience=args.patience,
        strategy=args.strategy,
        drop_duplicates=args.drop_duplicates,
        **_parse_overrides(args.set),
    )
    if result.report is None:  # a worker other than the chief: the chief reports and saves
        print(f"worker done: {len(result.history['loss'])} epochs; the chief wrote the model and its report")
        return
    report, history = result.report, result.history
    best = result.best_epoch - 1
    # The figures the model was compiled with (accuracy; micro and macro F1 at 0.5 for multi-label models).
    figures = ["loss"] + [key for key in history if key != "loss" and f"val_{key}" in history]
    print()
    print(f"data        {report['data']['source']} ({report['data']['encoding']}, "
          f"{report['data']['train_examples']} train / {report['data']['validation_examples']} validation)")
    print(f"epochs      {report['epochs_run']} run, best {result.best_epoch} (by {report['monitor']})")
    print(f"{'':12}" + "  ".join(f"{key:>8}" for key in figures))
    print(f"{'train':12}" + "  ".join(f"{history[key][best]:8.4f}" for key in figures))
    print(f"{'validation':12}" + "  ".join(f"{history['val_' + key][best]:8.4f}" for key in figures))
    print(f"time        {result.seconds:.1f} s ({report['train_examples_per_second']:.0f} examples/s)")
    if "distributed" in report:
        _print_layout(report["distributed"])
    print(f"saved       {result.model_path}")
    print()
    print(result.validation.format())
    print(f"\nvalidation {result.validation.headline()}")


def _print_layout(layout):
    print(f"distributed {layout['strategy']}: {layout['workers']} workers, {layout['replicas']} replicas, global "
          f"batch {layout['global_batch_size']} ({layout['per_replica_batch_size']} per replica), resumed from "
          f"epoch {layout['resumed_from_epoch']}, {layout['examples_left_out_per_epoch']} examples left out per epoch")


def _train_causal_lm(args):
    from zoo.causal_lm import train_causal_lm

    options = _parse_overrides(args.set)
    trainer_keys = ("learning_rate", "warmup_fraction", "weight_decay", "clipnorm", "lora_rank",
                    "jit_compile", "max_train_windows")
    trainer_options = {key: options.pop(key) for key in trainer_keys if key in options}
    result = train_causal_lm(
        args.name,
        args.data,
        out_dir=args.out,
        epochs=1 if args.epochs is None else args.epochs,
        batch_size=8 if args.batch_size is None else args.batch_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        encoding=args.encoding,
        strategy=args.strategy,
        **trainer_options,
        **options,
    )
    report = result.report
    if report is None:  # a worker other than the chief: the chief reports and saves
        print("worker done; the chief wrote the model and its report")
        return
    print()
    print(f"data        {report['data']['source']} ({report['data']['train_tokens']} train / "
          f"{report['data']['validation_tokens']} validation tokens)")
    print(f"epochs      {report['epochs_run']}, {report['train_seconds']:.1f} s, "
          f"{report['tokens_per_second']:.0f} tokens/s (last epoch)")
    print(f"validation  loss {report['validation_loss_before']:.4f} -> {report['validation_loss']:.4f}, "
          f"perplexity {report['validation_perplexity_before']:.1f} -> {report['validation_perplexity']:.1f}")
    if "distributed" in report:
        _print_layout(report["distributed"])
    print(f"saved       {result.model_path}")


def _generate(args):
    # Every path checks its arguments and prompts with zoo.runtime.generator's rules: one message each.
    if pathlib.Path(args.model).suffix in (".tflite", ".onnx"):
        outputs = _generate_litert(args)
    elif pathlib.Path(args.model).suffix == ".litertlm":
        outputs = _generate_litert_lm(args)
    else:
        from zoo.causal_lm import generate

        model = _load(args.model)
        if hasattr(model, "class_names"):
            raise ValueError(f"{args.model}: a {type(model).__name__} is a classifier, not a language model; "
                             "use `zoo predict`")
        outputs = generate(model, list(args.prompt), max_length=args.max_length, sampler=args.sampler,
                           seed=args.seed, temperature=args.temperature, **_sampler_args(args))
    for prompt, output in zip(args.prompt, outputs):
        if args.json:
            print(json.dumps({"prompt": prompt, "text": output}))
        else:
            print(output)
            print("---")


def _generate_litert(args):
    # An exported LiteRT decoder: zoo.runtime (the sidecar's BPE and ai_edge_litert, no TensorFlow).
    import zoo.runtime

    generator = zoo.runtime.load(args.model)
    if not hasattr(generator, "generate"):
        raise ValueError(f"{args.model}: a {generator.spec['task']} file, not a language model; use `zoo predict`")
    return generator.generate(list(args.prompt), max_length=args.max_length, sampler=args.sampler,
                              temperature=args.temperature, seed=args.seed, **_sampler_args(args))


def _generate_litert_lm(args):
    # A LiteRT-LM bundle on Google's engine (it tokenizes, prefills, samples; no TensorFlow).
    from zoo.runtime.litertlm_runner import LiteRTLMGenerator, sampler_config

    sampler = sampler_config(args.sampler, temperature=args.temperature, seed=args.seed, **_sampler_args(args))
    with LiteRTLMGenerator(args.model, sampler=sampler) as generator:
        return generator.generate(list(args.prompt), max_length=args.max_length)


def _sampler_args(args):
    return {"top_k": {"top_k": args.top_k}, "top_p": {"top_p": args.top_p},
            "beam": {"num_beams": args.num_beams}}.get(args.sampler, {})


def _load(model):
    from zoo.saving import load_model

    return load_model(model)


def _load_classifier(model):
    classifier = _load(model)
    if not hasattr(classifier, "class_names"):
        raise ValueError(f"{model}: a {type(classifier).__name__} is not a text classifier; use `zoo generate`")
    return classifier


def _evaluate(args):
    from zoo.data import load_texts
    from zoo.evaluation import evaluate_classifier

    classifier = _load_classifier(args.model)
    if args.split == "all":
        dataset = load_texts(
            args.data, text_column=args.text_column, label_column=args.label_column, encoding=args.encoding,
            class_names=classifier.class_names, multi_label=getattr(classifier, "multi_label", False),
            label_separator=args.label_separator,
        )
    else:
        train, validation = _training_split(args, classifier, "--split train and validation are parts of the data "
                                                              "the model was trained on; evaluate other data with "
                                                              "--split all")
        dataset = train if args.split == "train" else validation
    report = evaluate_classifier(classifier, dataset)
    if args.confusion_png:
        from zoo.evaluation import write_confusion_png

        write_confusion_png(report, args.confusion_png)
    if args.json:
        print(json.dumps(dict(report.to_dict(), source=dataset.source, split=args.split), indent=2))
    else:
        print(f"{dataset.source} ({dataset.encoding}, split: {args.split})")
        print(report.format())


def _training_split(args, classifier, advice):
    """`(train, validation)` as the model was trained: its report's data (or `--data`, which must be that data,
    unchanged) and its seed and validation fraction. A model without a report: `--data` split by the options."""
    from zoo.data import load_texts
    from zoo.saving import training_report, training_split

    report = training_report(args.model)
    data = report["data"] if report else {}
    if "class_names" not in data:
        dataset = load_texts(
            args.data, text_column=args.text_column, label_column=args.label_column, encoding=args.encoding,
            class_names=classifier.class_names, multi_label=getattr(classifier, "multi_label", False),
            label_separator=args.label_separator,
        )
        return dataset.split(*(DEFAULT_SPLIT[key] if getattr(args, key) is None else getattr(args, key)
                               for key in ("validation_fraction", "seed")))
    for key in ("validation_fraction", "seed"):
        given = getattr(args, key)
        if given is not None and given != data[key]:
            option = "--" + key.replace("_", "-")
            raise ValueError(f"{option} {given}: the model was trained with {option} {data[key]}; leave it out to "
                             "use the training run's split")
    return training_split(report, args.data or data["source"], advice)


def _predict(args):
    if args.input is not None:
        if args.texts:
            raise ValueError("give TEXT arguments or --input FILE, not both")
        return _predict_file(args)
    if not args.texts:
        raise ValueError("nothing to label: give TEXT arguments or --input FILE")
    if args.long_documents:
        return _print_predictions(args, _document_predictions(args))
    from zoo.runtime import backends

    if pathlib.Path(args.model).suffix in backends.RUNTIMES:
        # An exported LiteRT or ONNX file: the runner its sidecar's task registers (zoo.runtime: the sidecar
        # tokenizer, no TensorFlow).
        import zoo.runtime

        classifier = zoo.runtime.load(args.model)
        if not hasattr(classifier, "predict_labels"):
            raise ValueError(f"{args.model}: a {classifier.spec['task']} file, not a classifier; use zoo generate")
    else:
        classifier = _load_classifier(args.model)
    _print_predictions(args, classifier.predict_labels(args.texts))


def _document_predictions(args):
    """`predict_labels`'s answers for the TEXT arguments, each text read whole (`--long-documents`)."""
    from zoo.labelling import decisions, open_predictor

    predictor = open_predictor(args.model, threads=1, long_documents=True)
    predictions = []
    for decision in decisions(predictor, predictor.probabilities(list(args.texts))):
        if "labels" in decision:
            predictions.append(list(zip(decision["labels"], decision["scores"])))
        else:
            predictions.append((decision["label"], decision["score"]))
    return predictions


def _print_predictions(args, predictions):
    for text, prediction in zip(args.texts, predictions):
        if isinstance(prediction, list):
            # A multi-label model's prediction: every (label, score) over its label's threshold.
            if args.json:
                print(json.dumps({"text": text, "labels": [{"label": label, "score": round(score, 6)}
                                                           for label, score in prediction]}))
            else:
                labels = ", ".join(f"{_tsv(label)} {score:.4f}" for label, score in prediction)
                print(f"{labels or '(no label over its threshold)'}\t{_tsv(text)}")
        else:
            label, probability = prediction
            if args.json:
                print(json.dumps({"text": text, "label": label, "probability": round(probability, 6)}))
            else:
                print(f"{_tsv(label)}\t{probability:.4f}\t{_tsv(text)}")


def _tsv(value):
    # One row per text: a tab or line break inside a label or text would split it.
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _predict_file(args):
    from zoo.labelling import label_corpus, progress_printer

    result = label_corpus(args.model, args.input, args.output, text_column=args.text_column,
                          id_column=args.id_column, encoding=args.encoding, batch_size=args.batch_size,
                          threads=args.threads, probabilities=args.probabilities, overwrite=args.overwrite,
                          progress=progress_printer(), long_documents=args.long_documents)
    if args.output != "-":
        resumed = f" after {result.resumed_from:,} already there" if result.resumed_from else ""
        print(f"\rlabelled {result.rows:,} texts{resumed} in {result.seconds:.1f} s "
              f"({result.texts_per_second:,.0f} texts/s) into {args.output}", file=sys.stderr)


def _verify(args):
    # Runtime-only: no TensorFlow needed to check an export.
    from zoo.runtime import verify as verification

    files, sidecars = verification.verify_version(pathlib.Path(args.version_dir))
    print(f"{args.version_dir}: {files} files match {verification.MANIFEST_FILENAME}; "
          f"{sidecars} sidecars match their model files")


def _bench(args):
    # The harness lives beside the package in the source checkout, not in the installed package.
    checkout = pathlib.Path(__file__).resolve().parent.parent
    if not (checkout / "benchmarks" / "run.py").is_file():
        raise SystemExit("zoo bench: no benchmarks/ folder next to the zoo package; run it from a source checkout")
    sys.path.insert(0, str(checkout))
    from benchmarks.run import main as run_benchmarks

    return run_benchmarks(args.args)


def _export(args):
    import zoo.export
    from zoo.export.exporter import check_extras

    formats = None if args.format is None else _comma_list(args.format)
    check_extras(formats)  # before the model and --data are read
    validation_data = calibration_texts = None
    if args.prompt:
        validation_data = list(args.prompt)
    elif args.data:
        classifier = _load(args.model)
        if not hasattr(classifier, "class_names"):
            raise ValueError("--data is labeled text for classifiers; give a language model --prompt")
        train, validation_data = _export_split(args, classifier)
        calibration_texts = train.texts
    result = zoo.export.export(
        args.model,
        root=args.root,
        name=args.name or _default_export_name(args.model),
        version=args.version,
        formats=formats,
        variants=None if args.variants is None else () if args.variants == "none" else _comma_list(args.variants),
        force=args.force,
        validation_data=validation_data,
        calibration_texts=calibration_texts,
        cache_length=args.cache_length,
    )
    print(f"exported {result.name} version {result.version} to {result.path} "
          f"({result.report['validation_examples']} validation examples, {result.report['seconds']:.1f} s)")
    print(result.format_table())


def _export_split(args, classifier):
    """Validation and calibration data from `--data`: the training run's split where it is the data the model
    was trained on (refused when that file changed since), else `--data` split by the options."""
    from zoo.data import load_texts
    from zoo.saving import is_training_source, same_data, training_report

    report = training_report(args.model)
    data = report["data"] if report else {}
    if "class_names" in data and (same_data(args.data, data) or is_training_source(args.data, data)):
        # The run's own split; refused (naming the file) where it changed since.
        return _training_split(args, classifier, "pass held-out data the model was not trained on")
    dataset = load_texts(
        args.data, text_column=args.text_column, label_column=args.label_column,
        encoding=args.encoding, class_names=classifier.class_names,
        multi_label=getattr(classifier, "multi_label", False), label_separator=args.label_separator,
    )
    return dataset.split(*(DEFAULT_SPLIT[key] if getattr(args, key) is None else getattr(args, key)
                           for key in ("validation_fraction", "seed")))


def _default_export_name(model):
    # saved_models/lstm_classifier/model.keras exports as "lstm_classifier".
    path = pathlib.Path(model)
    if path.suffix == ".keras":
        return path.parent.name if path.parent.name not in ("", ".") else path.stem
    return path.name


def _comma_list(value):
    return tuple(part.strip() for part in value.split(",") if part.strip())


if __name__ == "__main__":
    sys.exit(main())
