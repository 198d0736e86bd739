"""Train a registered classifier on labeled text, keeping the best checkpoint.

The task class a registered model builds (`task_class`) can change how it is
trained by declaring, as zoo's `MultiLabelTextClassifier` does:

- `multi_label = True`: its labels are sets, read as label lists
  (`zoo.data.load_texts(multi_label=True)`) and fitted as a multi-hot matrix;
- `monitor = (name, "min" or "max")`: the validation figure that picks the
  best epoch and stops training early (default `("val_accuracy", "max")`);
- a `choose_thresholds(texts, labels)` method: called on the validation split
  once the best epoch is restored, before the model is saved.

The report then follows the labels (`zoo.evaluation.evaluate_classifier`).

Example:
>>> result = train_classifier("lstm_classifier", epochs=2, out_dir="saved_models/lstm_classifier")
>>> result.validation.accuracy
"""

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import tempfile
import time

import keras

from zoo import interrupts, memory, models
from zoo.data import LABEL_SEPARATOR, load_texts
from zoo.evaluation import evaluate_classifier
from zoo.saving import check_folder, data_fingerprint, remove_stale, save_trained_model

# Where a run changes what a reader sees, in order (`zoo.saving.reached`): model.keras, carrying its
# report, is the commit point; train_report.json is its readable copy.
WRITE_POINTS = ("model staged", "model", "report staged", "report")


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    model_path: pathlib.Path
    validation: object  # zoo.evaluation.ClassificationReport or MultiLabelReport
    history: dict
    best_epoch: int
    seconds: float
    report: dict


def train_classifier(
    name,
    data=None,
    *,
    out_dir=None,
    text_column="text",
    label_column="label",
    label_separator=LABEL_SEPARATOR,
    encoding=None,
    epochs=10,
    batch_size=32,
    validation_fraction=0.1,
    seed=1337,
    patience=3,
    verbose=1,
    strategy=None,
    drop_duplicates=False,
    **overrides,
):
    """Build `name` from the registry, fit it and save the best epoch.

    The vocabulary (and the Naive Bayes branch, for models that have one)
    is learned from the training split only. Keeps the epoch with the best
    validation figure the task monitors (accuracy unless it says otherwise;
    checkpointed while training, restored at the end), writes `model.keras`
    and `train_report.json` into `out_dir` (default `saved_models/<name>`),
    each written whole or not at all, the report also inside the model
    file (`zoo.saving.training_report`). Multi-label tasks read label lists
    (CSV/TSV fields separated by `label_separator`, or JSONL lists).

    Validation texts that also occur, exactly, in the training split are
    counted, printed and recorded (`report["data"]["duplicates_across_splits"]`);
    `drop_duplicates=True` leaves them out of validation (and the run's
    later splits, in `zoo evaluate` and `zoo export`, do the same).

    `strategy` ("auto", "mirrored", "multi_worker", or a
    `zoo.distributed.Cluster`) trains with tf.distribute on several devices
    or machines; `batch_size` is then the global batch. Only the chief
    writes `out_dir`'s files.
    """
    check_training_arguments(epochs=epochs, batch_size=batch_size, patience=patience)
    task = task_class(name)
    multi_label = getattr(task, "multi_label", False)
    monitor, mode = getattr(task, "monitor", ("val_accuracy", "max"))
    cluster = None
    if strategy is not None:
        if multi_label:
            raise ValueError(f"{name}: strategy= trains single-label classifiers only (zoo.distributed's step "
                             "computes sparse cross-entropy and accuracy)")
        from zoo import distributed

        cluster = distributed.make_cluster(strategy)
    models.check_config(name, dict(models.model_info(name).default_config, **overrides))
    out_dir = pathlib.Path(out_dir or pathlib.Path("saved_models") / name)
    check_folder(out_dir, "out_dir")
    dataset = load_texts(data, text_column=text_column, label_column=label_column, encoding=encoding,
                         multi_label=multi_label, label_separator=label_separator)
    train, validation = dataset.split(validation_fraction, seed)
    unique_validation = validation.without_texts_of(train)
    duplicates = len(validation) - len(unique_validation)
    if drop_duplicates:
        if not len(unique_validation):
            raise ValueError(f"{dataset.source}: every validation text also occurs in the training split; nothing "
                             "would be left to validate on (drop_duplicates)")
        validation = unique_validation
    if duplicates and verbose:
        print(f"{duplicates} of the {duplicates + len(unique_validation)} validation texts also occur in the training "
              f"split ({'left out of validation' if drop_duplicates else 'kept; --drop-duplicates leaves them out'})")
    window = None
    if "sequence_length" in models.model_info(name).default_config:
        window = fitted_sequence_length(train.texts, dict(models.model_info(name).default_config, **overrides),
                                        explicit="sequence_length" in overrides)
        overrides = dict(overrides, sequence_length=window["sequence_length"])
        if verbose:
            print(window["message"])
    memory.check_classifier_training(dict(models.model_info(name).default_config, **overrides), dataset, label_column)
    keras.utils.set_random_seed(seed)
    # Under a strategy the variables (and the optimizer's) are made in its scope: mirrored on every replica.
    with cluster.strategy.scope() if cluster else contextlib.nullcontext():
        model = models.create_model(
            name, num_classes=len(dataset.class_names), class_names=list(dataset.class_names), **overrides
        )
        model.adapt(train.texts, train.labels)

    out_dir.mkdir(parents=True, exist_ok=True)
    data_fields = {
        "source": dataset.source,
        # So that a later split of this file (zoo evaluate, zoo export) can be checked to be this one.
        "fingerprint": data_fingerprint(dataset.source),
        "encoding": dataset.encoding,
        "examples": len(dataset),
        "train_examples": len(train),
        "validation_examples": len(validation),
        "validation_fraction": validation_fraction,
        "seed": seed,
        "duplicates_across_splits": duplicates,
        "drop_duplicates": bool(drop_duplicates),
        "text_column": text_column,
        "label_column": label_column,
        "class_names": list(dataset.class_names),
    }
    if window is not None:
        data_fields["window"] = {key: value for key, value in window.items() if key != "message"}
    if multi_label:
        data_fields.update(multi_label=True, label_separator=label_separator,
                           label_counts=dataset.class_counts())
    if cluster is not None:
        return _train_distributed(name, model, cluster, train, validation, out_dir, overrides, data_fields,
                                  epochs=epochs, batch_size=batch_size, patience=patience, seed=seed,
                                  verbose=verbose)
    # A killed run (kill -9) leaves its checkpoint folder: the next run removes it (the pid is in the name).
    remove_stale(out_dir, ".checkpoint-")
    checkpoint_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".checkpoint-{os.getpid()}-", dir=out_dir))
    try:
        callbacks = [
            keras.callbacks.ModelCheckpoint(
                checkpoint_dir / "best.keras", monitor=monitor, mode=mode, save_best_only=True
            ),
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
            ),
            tensorboard_callback(out_dir),
        ]
        started = time.perf_counter()
        with interrupts.interruptible() as interrupt:
            history = model.fit(
                train.to_tf_dataset(batch_size, shuffle=True, seed=seed),
                validation_data=validation.to_tf_dataset(batch_size),
                epochs=epochs,
                callbacks=callbacks + [interrupts.InterruptCheck(interrupt)],
                verbose=verbose,
            )
        seconds = time.perf_counter() - started
        # EarlyStopping restores the best weights only when it stops early.
        best = keras.saving.load_model(checkpoint_dir / "best.keras", safe_mode=True)
        model.set_weights(best.get_weights())
    finally:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)

    monitored = history.history[monitor]
    best_epoch = (max if mode == "max" else min)(range(len(monitored)), key=monitored.__getitem__) + 1
    if hasattr(model, "choose_thresholds"):
        model.choose_thresholds(validation.texts, validation.labels)
    report = evaluate_classifier(model, validation)
    summary = _summary(name, overrides, data_fields, history.history, monitor, best_epoch, seconds,
                       len(train) * len(monitored) / seconds, report, _parts(model, validation))
    model_path, summary = save_trained_model(model, out_dir, summary)
    return TrainResult(model, model_path, report, history.history, best_epoch, seconds, summary)


def _train_distributed(name, model, cluster, train, validation, out_dir, overrides, data_fields, *, epochs,
                       batch_size, patience, seed, verbose):
    """`zoo.distributed.fit` (Keras's `fit` fails under MultiWorkerMirroredStrategy); the chief writes the files."""
    from zoo import distributed

    fitted = distributed.fit(model, (list(train.texts), train.labels), (list(validation.texts), validation.labels),
                             cluster, epochs=epochs, global_batch_size=batch_size, seed=seed, out_dir=out_dir,
                             from_logits=False, preprocess=model.preprocessor, monitor="val_accuracy",
                             patience=patience, verbose=verbose)
    if not cluster.is_chief:
        return TrainResult(model, None, None, fitted.history, fitted.best_epoch, fitted.seconds, None)
    # Keras's predict has the same PerReplica failure as fit: report on a copy loaded outside the strategy.
    remove_stale(out_dir, ".copy-")
    with tempfile.TemporaryDirectory(prefix=f".copy-{os.getpid()}-", dir=out_dir) as scratch:
        model.save(pathlib.Path(scratch) / "model.keras")
        saved = keras.saving.load_model(pathlib.Path(scratch) / "model.keras", safe_mode=True)
    report = evaluate_classifier(saved, validation)
    summary = _summary(name, overrides, data_fields, fitted.history, "val_accuracy", fitted.best_epoch,
                       fitted.seconds, fitted.examples_per_second, report, _parts(saved, validation))
    summary["distributed"] = fitted.layout
    model_path, summary = save_trained_model(saved, out_dir, summary)
    return TrainResult(saved, model_path, report, fitted.history, fitted.best_epoch, fitted.seconds, summary)


def _parts(model, validation):
    """Validation accuracy of the whole model, its Naive Bayes branch alone and its network alone
    (`TextClassifier.part_accuracies`), for the tasks that score them; else None."""
    if not hasattr(model, "part_accuracies"):
        return None
    return {part: round(accuracy, 4) for part, accuracy in model.part_accuracies(validation.texts,
                                                                                 validation.labels).items()}


def _summary(name, overrides, data_fields, history, monitor, best_epoch, seconds, examples_per_second, report,
             parts=None):
    summary = {
        "model": name,
        "config": _jsonable(dict(models.model_info(name).default_config, **overrides)),
        "data": data_fields,
        "epochs_run": len(history["loss"]),
        "monitor": monitor,
        "best_epoch": best_epoch,
        "train_seconds": round(seconds, 2),
        "train_examples_per_second": round(examples_per_second, 1),
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "validation": report.to_dict(),
        "versions": library_versions(),
    }
    if parts is not None:
        summary["parts"] = parts
    return summary


# The window chosen from the data: this percentile of the training texts' token counts, rounded up to
# a multiple of WINDOW_STEP, never below the registered default nor above WINDOW_CAP (recurrent and
# convolutional training time grows with it linearly, the transformer's attention quadratically).
WINDOW_PERCENTILE = 95
WINDOW_STEP = 64
WINDOW_CAP = 512
WINDOW_SAMPLE = 20_000


def fitted_sequence_length(texts, config, explicit=False, seed=0):
    """The model's window for `texts` and what it cuts: `{"sequence_length", "chosen", "truncated_share",
    "token_percentiles", "message"}`.

    Unless `explicit` (the user set `config["sequence_length"]`, which always wins), the window is the
    `WINDOW_PERCENTILE`th percentile of the texts' token counts (the tokenizer's own word rules; a
    seeded sample of `WINDOW_SAMPLE` texts for a larger corpus), rounded up to a multiple of
    `WINDOW_STEP` and kept within [the registered default, `WINDOW_CAP`]. A logged warning says when
    the window cuts most texts.
    """
    import numpy as np

    from zoo.preprocessing.reference import split_words

    if len(texts) > WINDOW_SAMPLE:
        texts = [texts[i] for i in np.random.default_rng(seed).choice(len(texts), WINDOW_SAMPLE, replace=False)]
    counts = np.array([len(split_words(text, config.get("lower", True), config.get("punctuation", "split")))
                       for text in texts])
    percentiles = {str(q): int(np.percentile(counts, q)) for q in (50, WINDOW_PERCENTILE, 99)}
    if explicit:
        length, chosen = int(config["sequence_length"]), "set"
    else:
        wanted = int(np.ceil(np.percentile(counts, WINDOW_PERCENTILE) / WINDOW_STEP)) * WINDOW_STEP
        length, chosen = min(max(wanted, int(config["sequence_length"])), WINDOW_CAP), "from the data"
    truncated = float((counts > length).mean())
    message = (f"sequence_length {length} ({chosen}; training texts have {percentiles['50']} tokens at the median, "
               f"{percentiles[str(WINDOW_PERCENTILE)]} at the {WINDOW_PERCENTILE}th percentile): {truncated:.1%} "
               "of them are cut")
    if truncated > 0.5:
        logging.getLogger("zoo").warning(f"sequence_length {length} cuts {truncated:.0%} of the training texts "
                                         f"(median {percentiles['50']} tokens); leave it unset to fit it to the data")
    return {"sequence_length": length, "chosen": chosen, "truncated_share": round(truncated, 4),
            "token_percentiles": percentiles, "message": message}


def tensorboard_callback(out_dir):
    """Keras's TensorBoard logs (losses and metrics per epoch) in `out_dir/logs/<start time>`, one folder per run:
    `tensorboard --logdir out_dir/logs`."""
    run = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    return keras.callbacks.TensorBoard(log_dir=str(pathlib.Path(out_dir) / "logs" / run), write_graph=False,
                                       profile_batch=0)


def task_class(name):
    """The class registered model `name` builds, without building it (its spec's `model_class`), else
    zoo's `TextClassifier`."""
    from zoo.models.text_classifier import TextClassifier

    return models.model_info(name).model_class or TextClassifier


def check_training_arguments(**arguments):
    """`epochs` and `batch_size` must be integers >= 1, `patience` >= 0: checked before any data is read."""
    for key, value in arguments.items():
        least = 0 if key == "patience" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{key} must be an integer >= {least}, got {value!r}")


def _jsonable(config):
    return {key: value for key, value in config.items() if key not in ("vocabulary",)}


def library_versions():
    import keras_hub
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "keras_hub": keras_hub.__version__}
