"""Train, fine-tune and sample registered causal language models (every `causal-lm` family).

`train_causal_lm` packs a corpus into fixed windows (documents joined by
`<|endoftext|>`, no padding), holds out a validation part, and trains with
AdamW (linear warmup, cosine decay, gradient clipping), XLA on by default,
a checkpoint every epoch and `BackupAndRestore` so a killed run resumes where
it stopped. `generate` samples with keras-hub's samplers. Both work on any
keras-hub `CausalLM` the registry builds (GPT-2, the LSTM language model).

Example:
>>> result = train_causal_lm("gpt2_tiny", epochs=1, out_dir="saved_models/gpt2_tiny")
>>> generate(result.model, ["ROMEO:"], max_length=40, sampler="top_k", seed=0)
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import pathlib
import shutil
import time

import keras
import keras_hub
from keras import ops
import numpy as np
import tensorflow as tf

from zoo import interrupts, models
from zoo.data import load_corpus
from zoo.preprocessing import bpe
from zoo.runtime import generator as runtime_generator
from zoo.saving import check_folder, data_fingerprint, new_run_id, reached, save_trained_model, write_atomically
from zoo.training import check_training_arguments, library_versions, tensorboard_callback

SAMPLERS = runtime_generator.KERAS_SAMPLERS


@dataclasses.dataclass
class LanguageModelResult:
    model: keras.Model
    model_path: pathlib.Path
    report: dict


def perplexity(loss):
    """exp(loss), capped so a diverged run reports a huge number, not an overflow."""
    return math.exp(min(loss, 50.0))


def pack_tokens(token_ids, sequence_length):
    """Cut one long id stream into `[n, sequence_length + 1]` windows (inputs + next token)."""
    window = sequence_length + 1
    usable = (len(token_ids) - 1) // sequence_length * sequence_length + 1
    if usable < window:
        raise ValueError(
            f"{len(token_ids)} tokens are fewer than one training window of {window}; "
            "use more text or a smaller sequence_length"
        )
    starts = np.arange(0, usable - 1, sequence_length)
    return np.stack([token_ids[start : start + window] for start in starts]).astype(np.int32)


def tokenize_corpus(tokenizer, corpus, chunk_lines=2000):
    """All documents as one int32 id stream, each followed by `<|endoftext|>`."""
    stream = []
    for document in corpus.documents:
        lines = document.split("\n")
        # Tokenize in chunks that end at line breaks: the BPE pre-tokenizer
        # never merges across "\n", so the ids equal whole-document ones.
        for start in range(0, len(lines), chunk_lines):
            chunk = "\n".join(lines[start : start + chunk_lines])
            if start + chunk_lines < len(lines):
                chunk += "\n"
            stream.append(np.asarray(tokenizer(chunk), np.int32))
        stream.append(np.asarray([tokenizer.end_token_id], np.int32))
    return np.concatenate(stream)


def window_features(windows):
    """`(x, y)` of id windows `[n, length + 1]`: the first `length` ids (all real, no padding) and the next ones."""
    return {"token_ids": windows[:, :-1], "padding_mask": np.ones_like(windows[:, :-1], dtype=bool)}, windows[:, 1:]


def windows_dataset(windows, batch_size, shuffle=False, seed=1337):
    dataset = tf.data.Dataset.from_tensor_slices(window_features(windows))
    if shuffle:
        dataset = dataset.shuffle(len(windows), seed=seed, reshuffle_each_iteration=True)
    # Full batches only: one static shape, one XLA compilation.
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


class TokensPerSecond(keras.callbacks.Callback):
    """Adds `tokens_per_second` (training throughput) to each epoch's logs."""

    def __init__(self, tokens_per_batch):
        super().__init__()
        self.tokens_per_batch = tokens_per_batch

    def on_epoch_begin(self, epoch, logs=None):
        self._batches, self._started = 0, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        if logs is not None:
            logs["tokens_per_second"] = self._batches * self.tokens_per_batch / max(seconds, 1e-9)
            if "val_loss" in logs:
                logs["val_perplexity"] = perplexity(logs["val_loss"])


def next_token_accuracy(y_true, y_pred):
    """1.0 where the label's logit is the largest, else 0.0 (ties count as right).

    The same figure as SparseCategoricalAccuracy without its argmax: a row
    maximum is a plain reduction XLA runs fast, where the argmax (a value +
    index reduction over 50,257 logits per token) was a measurable share of
    a GPT-2 small training step (benchmarks/README.md).
    """
    labels = ops.expand_dims(ops.cast(y_true, "int32"), -1)
    label_logits = ops.take_along_axis(y_pred, labels, axis=-1)[..., 0]
    return ops.cast(label_logits >= ops.max(y_pred, axis=-1), "float32")


def build_trainer(model, steps, learning_rate=5e-4, warmup_fraction=0.1, weight_decay=0.01, clipnorm=1.0,
                  jit_compile=True):
    """The compiled, preprocessor-free view of `model` that `fit` runs on id windows.

    AdamW with linear warmup then cosine decay over `steps`, gradients
    clipped to a global norm of `clipnorm`, no weight decay on biases, norms
    and embeddings (GPT-2's recipe).
    """
    warmup_steps = int(steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(1, steps - warmup_steps),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    # Clipping by the global norm of all gradients, as GPT-2 and PyTorch's
    # clip_grad_norm_ do (per-variable `clipnorm` also costs XLA two extra
    # passes over every gradient).
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, global_clipnorm=clipnorm)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
    # The windows are ids already: train the task without its preprocessor
    # (the same network, weights shared with `model`).
    trainer = type(model)(backbone=model.backbone, preprocessor=None)
    trainer.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.MeanMetricWrapper(next_token_accuracy, name="accuracy")],
        jit_compile=jit_compile,
    )
    return trainer


def train_causal_lm(
    name,
    data=None,
    *,
    out_dir=None,
    epochs=1,
    batch_size=8,
    learning_rate=None,
    warmup_fraction=0.1,
    weight_decay=0.01,
    clipnorm=1.0,
    lora_rank=None,
    jit_compile=True,
    validation_fraction=0.1,
    seed=1337,
    max_train_windows=None,
    encoding=None,
    callbacks=(),
    verbose=1,
    strategy=None,
    **overrides,
):
    """Fine-tune (or train from scratch) a registered causal LM on a corpus.

    Args:
        name: a registered `causal-lm` model, e.g. "gpt2_tiny".
        data: `.txt`, `.jsonl` or folder of `.txt` (default tinyshakespeare).
        out_dir: default `saved_models/<name>`; holds `model.keras`,
            `train_report.json`, per-epoch checkpoints and the resume backup.
        learning_rate: AdamW's peak rate; default the model's `learning_rate`
            setting where it has one (families trained from scratch), else 5e-4
            (GPT-2 fine-tuning).
        lora_rank: train only rank-`r` LoRA adapters of the backbone (GPT-2's
            attention; a backbone without LoRA layers refuses it).
        max_train_windows: cap the number of training windows (quick runs).
        callbacks: extra Keras callbacks, run after zoo's own (not with `strategy`).
        strategy: "auto", "mirrored", "multi_worker" or a
            `zoo.distributed.Cluster`: train with tf.distribute (zoo's own
            step, no XLA); `batch_size` is the global batch and only the
            chief writes `out_dir`'s files.
        **overrides: model config, e.g. `weights=DIR`, `sequence_length=256`,
            `tokenizer="train"`, `bpe_vocabulary_size=4096`.
    """
    spec = models.model_info(name)
    if spec.task != "causal-lm":
        raise ValueError(f"{name} is a {spec.task} model; train it with `zoo train` / train_classifier")
    check_training_arguments(epochs=epochs, batch_size=batch_size)
    if learning_rate is None:
        learning_rate = spec.default_config.get("learning_rate", 5e-4)
    cluster = None
    if strategy is not None:
        from zoo import distributed

        cluster = distributed.make_cluster(strategy)
        if callbacks:
            raise ValueError("callbacks are Keras fit callbacks; training with a strategy runs zoo's own loop")
    models.check_config(name, dict(spec.default_config, **{k: v for k, v in overrides.items()
                                                             if k in spec.default_config}))
    out_dir = pathlib.Path(out_dir or pathlib.Path("saved_models") / name)
    for folder in (out_dir, *(out_dir / sub for sub in (TOKENIZER_DIRNAME, BACKUP_DIRNAME, CHECKPOINTS_DIRNAME))):
        check_folder(folder, "out_dir")
    corpus = load_corpus(data, encoding=encoding)
    train_corpus, validation_corpus = corpus.split(validation_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    config = dict(spec.default_config, **overrides)
    data_settings = {"data": data_fingerprint(corpus.source), "encoding": corpus.encoding,
                     "validation_fraction": validation_fraction, "seed": seed}
    # Everything that decides what the run trains (the trainer's arguments win over a config's own
    # `learning_rate`): a backup resumes only under the same.
    settings = _jsonable({"model": name, **config, **data_settings, "epochs": epochs, "batch_size": batch_size,
                          "learning_rate": learning_rate, "warmup_fraction": warmup_fraction,
                          "weight_decay": weight_decay, "clipnorm": clipnorm, "lora_rank": lora_rank,
                          "max_train_windows": max_train_windows})
    backup_dir = out_dir / BACKUP_DIRNAME
    resumed = read_backup(backup_dir, settings) if cluster is None else None
    if resumed is None and cluster is None:
        # A fresh run: the previous run's per-epoch checkpoints are not this run's.
        shutil.rmtree(out_dir / CHECKPOINTS_DIRNAME, ignore_errors=True)
    if config["tokenizer"] == "train" and config.get("vocabulary") is None:
        # The vocabulary is part of the model: learn it on the training part
        # only, and keep it beside the checkpoints so a resumed run reuses it.
        tokenizer_settings = dict(data_settings, bpe_vocabulary_size=config["bpe_vocabulary_size"])
        overrides["vocabulary"], overrides["merges"] = prepare_vocabulary(
            out_dir / TOKENIZER_DIRNAME, train_corpus, tokenizer_settings)
    def scope():  # under a strategy every variable (the optimizer's too) is made mirrored
        return cluster.strategy.scope() if cluster else contextlib.nullcontext()

    with scope():
        model = models.create_model(name, **overrides)
        if lora_rank:
            enable_lora(model, int(lora_rank))
    tokenizer = model.preprocessor.tokenizer
    sequence_length = model.preprocessor.sequence_length

    train_windows = pack_tokens(tokenize_corpus(tokenizer, train_corpus), sequence_length)
    validation_windows = pack_tokens(tokenize_corpus(tokenizer, validation_corpus), sequence_length)
    if max_train_windows:
        train_windows = train_windows[: int(max_train_windows)]
    if len(train_windows) < batch_size:
        raise ValueError(f"only {len(train_windows)} training windows for batch_size {batch_size}")
    validation_batch = min(batch_size, len(validation_windows))
    train_data = windows_dataset(train_windows, batch_size, shuffle=True, seed=seed)
    validation_data = windows_dataset(validation_windows, validation_batch)

    steps = epochs * (len(train_windows) // batch_size)
    with scope():
        trainer = build_trainer(model, steps, learning_rate, warmup_fraction, weight_decay, clipnorm,
                                jit_compile and cluster is None)
    facts = dict(name=name, corpus=corpus, overrides=overrides, train_windows=train_windows,
                 validation_windows=validation_windows, validation_fraction=validation_fraction, seed=seed,
                 sequence_length=sequence_length, batch_size=batch_size, learning_rate=learning_rate,
                 lora_rank=lora_rank)
    if cluster is not None:
        return _train_distributed(model, trainer, cluster, out_dir, epochs, verbose, facts)
    initial = trainer.evaluate(validation_data, verbose=0, return_dict=True)
    backup = ResumableBackup(backup_dir, settings, resumed)
    callbacks = [
        TokensPerSecond(batch_size * sequence_length),
        EpochCheckpoint(out_dir / CHECKPOINTS_DIRNAME),
        backup,
        tensorboard_callback(out_dir),
        *callbacks,
    ]
    started = time.perf_counter()
    with interrupts.interruptible() as interrupt:
        trainer.fit(train_data, validation_data=validation_data, epochs=epochs,
                    callbacks=callbacks + [interrupts.InterruptCheck(interrupt)], verbose=verbose)
    seconds = time.perf_counter() - started
    final = trainer.evaluate(validation_data, verbose=0, return_dict=True)

    history = backup.history  # every epoch of the run, those before a resume too
    report = _report(facts, history, seconds, initial["loss"], final["loss"],
                     jit_compile=jit_compile, tokens_per_second=(history.get("tokens_per_second") or [None])[-1])
    report.update(run_id=backup.run_id, resumed_from_epoch=resumed["epoch"] if resumed else 0)
    result = _save(model, out_dir, report)
    # Only now is the run whole on disk: a kill before this line resumes from the backup. Its state
    # file goes first, so a kill while the rest is removed leaves nothing that looks resumable.
    (backup_dir / BACKUP_STATE).unlink(missing_ok=True)
    shutil.rmtree(backup_dir, ignore_errors=True)
    reached("backup removed")
    return result


# === A run's files in out_dir ===

TOKENIZER_DIRNAME = "tokenizer"
BACKUP_DIRNAME = "backup"
CHECKPOINTS_DIRNAME = "checkpoints"
# Beside vocab.json and merges.txt: what they were learned from, and their sha256.
TOKENIZER_RECORD = "zoo_tokenizer.json"
BACKUP_STATE = "training_metadata.json"

# Where a run changes what is on disk, in order (`zoo.saving.reached`; each file also has a
# "<point> staged" point just before its rename): the tokenizer (when it is trained), then per epoch
# a checkpoint and the resume backup (weights, then the state naming them: the commit), then
# model.keras carrying its report, its readable copy, and the backup's removal.
WRITE_POINTS = tuple(
    point
    for name in ("tokenizer vocab.json", "tokenizer merges.txt", "tokenizer record", "checkpoint",
                 "backup weights", "backup", "model", "report")
    for point in (f"{name} staged", name)
) + ("backup removed",)

logger = logging.getLogger(__name__)


def prepare_vocabulary(directory, train_corpus, settings):
    """`(vocab.json, merges.txt)` learned on `train_corpus`: those in `directory` when a run with the
    same `settings` (data, split, size) wrote them whole, else learned again and written."""
    directory = pathlib.Path(directory)
    record_path = directory / TOKENIZER_RECORD
    try:
        record = json.loads(record_path.read_text())
        files = bpe.vocabulary_files(directory)
        if record["settings"] == settings and record["sha256"] == [sha256_file(path) for path in files]:
            return files
        logger.warning(f"{directory}: learned with other settings or data than this run's; learning it again")
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as error:
        logger.warning(f"{directory}: unusable ({str(error).splitlines()[0]}); learning it again")
    vocabulary, merges = bpe.train_byte_level_bpe(train_corpus.documents, settings["bpe_vocabulary_size"])
    files = bpe.write_vocabulary_files(directory, vocabulary, merges)
    record = {"settings": settings, "sha256": [sha256_file(path) for path in files]}
    write_atomically(record_path, lambda path: pathlib.Path(path).write_text(json.dumps(record, indent=2)),
                     point="tokenizer record")
    return files


def read_backup(backup_dir, settings):
    """The resume state an interrupted run left in `backup_dir`, or None when there is none to resume.

    A state of a run with other `settings` is refused, naming the first
    difference (resuming it would train on other data or another tokenizer
    under this run's report); one that cannot be read (cut short, or left by
    Keras's own BackupAndRestore in an older zoo) is discarded with a warning.
    """
    backup_dir = pathlib.Path(backup_dir)
    if not backup_dir.is_dir():
        return None
    state, reason = _backup_state(backup_dir)
    if state is None:
        if reason:
            logger.warning(f"{backup_dir}: cannot resume the interrupted run's backup: {reason}; starting over")
        shutil.rmtree(backup_dir, ignore_errors=True)
        return None
    saved_settings = state["settings"]
    differences = [key for key in sorted(set(settings) | set(saved_settings))
                   if settings.get(key) != saved_settings.get(key)]
    if differences:
        key = differences[0]
        raise ValueError(
            f"{backup_dir}: an interrupted run with other settings waits there to be resumed ({key}: "
            f"{_shown(saved_settings.get(key))}, this run: {_shown(settings.get(key))}); rerun with its settings "
            f"to resume it, or delete {backup_dir} (or use another --out) to start over")
    return state


def _backup_state(backup_dir):
    """`(state, None)`, or `(None, why it cannot be resumed)`.

    The state file is the commit: without it no backup was ever whole (a run
    stopped in its first backup, or while removing it), so there is nothing
    to resume and nothing to say (`None, ""`).
    """
    state_path = backup_dir / BACKUP_STATE
    if not state_path.exists():
        return None, ""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError) as error:
        return None, f"{BACKUP_STATE} is not whole ({error})"
    if not isinstance(state, dict) or not {"weights", "settings", "run_id", "epoch", "history"} <= set(state):
        return None, (f"{BACKUP_STATE} does not record the run's settings (written by Keras's BackupAndRestore "
                      "in an older zoo, or by another program)")
    try:
        check_weights_file(backup_dir / state["weights"])
    except (OSError, TypeError, ValueError) as error:
        return None, f"{state['weights']} is cut short or unreadable ({str(error).splitlines()[0]})"
    return dict(state, weights=backup_dir / state["weights"]), None


def check_weights_file(path):
    """Raise OSError unless `path` is a whole HDF5 file (a cut-short one fails to open)."""
    import h5py

    with h5py.File(path, "r") as file:
        file.visit(lambda name: None)


def sha256_file(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _shown(value):
    if isinstance(value, dict) and "sha256" in value:
        return f"sha256 {value['sha256'][:12]}..."
    return repr(value)


def _jsonable(settings):
    """`settings` as JSON gives them back (paths as strings), the tokenizer's own files left out."""
    settings = {key: value for key, value in settings.items() if key not in ("vocabulary", "merges")}
    return json.loads(json.dumps(settings, default=str))


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore` whose backup is never half-written, and that knows whose it is.

    Each epoch writes the weights (and optimizer state) under a new name,
    then `training_metadata.json` naming them, the run's settings, run id and
    history: that rename is the commit, so a kill at any moment leaves the
    previous backup whole. `resumed` is `read_backup`'s answer (None: a fresh
    run). The backup is removed by the trainer once the model is saved, not
    when `fit` ends.
    """

    def __init__(self, backup_dir, settings, resumed=None):
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self.directory, self.settings, self.resumed = pathlib.Path(backup_dir), settings, resumed
        self.run_id = resumed["run_id"] if resumed else new_run_id()
        self.history = {key: list(values) for key, values in (resumed or {}).get("history", {}).items()}

    def _load_model(self):
        if self.resumed is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.resumed["weights"])
        self.model._initial_epoch = self.resumed["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = f"state_epoch_{self._current_epoch:03d}.weights.h5"
        write_atomically(self.directory / weights, lambda path: self.model.save_weights(path), point="backup weights")
        state = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": weights,
                 "run_id": self.run_id, "settings": self.settings, "history": self.history}
        write_atomically(self.directory / BACKUP_STATE, lambda path: pathlib.Path(path).write_text(json.dumps(state)),
                         point="backup")
        for path in self.directory.glob("state_epoch_*.weights.h5"):
            if path.name != weights:
                path.unlink(missing_ok=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """`directory/epoch_NNN.weights.h5` after each epoch, each written whole or not at all."""

    def __init__(self, directory):
        super().__init__()
        self.directory = pathlib.Path(directory)

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(self.directory / f"epoch_{epoch + 1:03d}.weights.h5", self.model.save_weights,
                         point="checkpoint")


def enable_lora(model, rank):
    """Freeze the backbone but for rank-`rank` LoRA adapters; a clear error where it has no LoRA layers."""
    model.backbone.enable_lora(rank)
    # keras-hub freezes every layer, then unfreezes those it names (attention
    # queries and values): nothing left to train means there were none.
    if not model.backbone.trainable_weights:
        raise ValueError(f"lora_rank: {type(model.backbone).__name__} has no LoRA layers "
                         f"({', '.join(model.backbone.default_lora_layer_names())}); train without lora_rank")


def _train_distributed(model, trainer, cluster, out_dir, epochs, verbose, facts):
    """`zoo.distributed.fit` on the id windows; the chief saves the model and the report."""
    from zoo import distributed

    batch_size = facts["batch_size"]
    validation = window_features(facts["validation_windows"])
    initial = distributed.evaluator(trainer, validation, batch_size, None, from_logits=True)()
    fitted = distributed.fit(trainer, window_features(facts["train_windows"]), validation, cluster, epochs=epochs, global_batch_size=batch_size,
                             seed=facts["seed"], out_dir=out_dir, from_logits=True, verbose=verbose)
    if not cluster.is_chief:
        return LanguageModelResult(model, None, None)
    history = dict(fitted.history, val_perplexity=[perplexity(loss) for loss in fitted.history["val_loss"]])
    report = _report(facts, history, fitted.seconds, initial["val_loss"], fitted.history["val_loss"][-1],
                     jit_compile=False, tokens_per_second=fitted.examples_per_second * facts["sequence_length"])
    report["distributed"] = fitted.layout
    return _save(model, out_dir, report)


def _report(facts, history, seconds, loss_before, loss_after, *, jit_compile, tokens_per_second):
    return {
        "model": facts["name"],
        "config": {key: str(value) if isinstance(value, pathlib.Path) else value
                   for key, value in facts["overrides"].items() if key not in ("vocabulary", "merges")},
        "data": {"source": facts["corpus"].source, "encoding": facts["corpus"].encoding,
                 "characters": facts["corpus"].num_characters, "train_tokens": int(facts["train_windows"].size),
                 "validation_tokens": int(facts["validation_windows"].size),
                 "validation_fraction": facts["validation_fraction"], "seed": facts["seed"]},
        "sequence_length": facts["sequence_length"],
        "batch_size": facts["batch_size"],
        "learning_rate": facts["learning_rate"],
        "epochs_run": len(history.get("loss", [])),
        "lora_rank": facts["lora_rank"],
        "jit_compile": jit_compile,
        "train_seconds": round(seconds, 2),
        "tokens_per_second": tokens_per_second,
        "validation_loss_before": loss_before,
        "validation_perplexity_before": perplexity(loss_before),
        "validation_loss": loss_after,
        "validation_perplexity": perplexity(loss_after),
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "versions": library_versions(),
    }


def _save(model, out_dir, report):
    model_path, report = save_trained_model(model, out_dir, report)
    return LanguageModelResult(model, model_path, report)


def make_sampler(sampler="greedy", *, temperature=1.0, top_k=10, top_p=0.9, num_beams=4, seed=None):
    """A keras-hub sampler by name (arguments checked by zoo's one set of generation rules)."""
    runtime_generator.check_generation_arguments(sampler, temperature=temperature, top_k=top_k, top_p=top_p,
                                                 num_beams=num_beams, seed=seed, samplers=SAMPLERS)
    if sampler == "greedy":
        return keras_hub.samplers.GreedySampler(temperature=temperature)
    if sampler == "top_k":
        return keras_hub.samplers.TopKSampler(k=top_k, temperature=temperature, seed=seed)
    if sampler == "top_p":
        return keras_hub.samplers.TopPSampler(p=top_p, temperature=temperature, seed=seed)
    return keras_hub.samplers.BeamSampler(num_beams=num_beams, temperature=temperature)


def generate(model, prompts, *, max_length=64, sampler="greedy", seed=None, **sampler_args):
    """Continue each prompt; stops at `<|endoftext|>` or `max_length` tokens.

    The same rules as zoo's other generation paths (`zoo.runtime.Generator`,
    the LiteRT-LM runner, `zoo generate`): arguments, seeds, the context
    limit and prompts are checked by the same functions, and generated bytes
    that are not UTF-8 read as U+FFFD (zoo's tokenizer detokenizes so).

    Args:
        model: a keras-hub `CausalLM` with its preprocessor (e.g. `GPT2CausalLM`, `LSTMCausalLM`).
        prompts: a string or a list of strings (one batch); UTF-8 `bytes` too.
        max_length: total length in tokens, prompt included (at most the
            backbone's `max_sequence_length` where it has one).
        sampler: "greedy", "top_k", "top_p" or "beam".
        seed: an integer in [0, 2**32) makes the stochastic samplers reproducible.
    """
    if not isinstance(model, keras_hub.models.CausalLM) or model.preprocessor is None:
        raise ValueError(f"a {type(model).__name__} is not a causal language model with its preprocessor: "
                         "generate continues prompts with a causal-lm model (`zoo list causal-lm`)")
    prompts, single = runtime_generator.prompt_list(prompts)
    # A transformer's position embedding bounds its context; a recurrence has no bound.
    runtime_generator.check_generation_arguments(
        sampler, max_length, seed=seed, samplers=SAMPLERS, vocabulary_size=model.backbone.vocabulary_size,
        context_length=getattr(model.backbone, "max_sequence_length", None), **sampler_args)
    # + 1: the start token the preprocessor adds (keras-hub hands eager ids back as lists).
    token_ids = model.preprocessor.tokenizer(tf.constant(prompts))
    token_ids = token_ids.to_list() if hasattr(token_ids, "to_list") else token_ids
    runtime_generator.check_prompt_lengths([len(ids) + 1 for ids in token_ids], max_length)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    # compile() drops keras-hub's traced (XLA) generate function; do it only
    # when the sampler changes, so repeated calls reuse the compiled loop. A
    # seed always gets a fresh sampler: its random state must restart.
    sampler_key = (sampler, tuple(sorted(sampler_args.items())))
    if seed is not None or getattr(model, "_zoo_sampler_key", None) != sampler_key:
        model.compile(sampler=make_sampler(sampler, seed=seed, **sampler_args))
        model._zoo_sampler_key = sampler_key
    outputs = model.generate(tf.constant(prompts), max_length=max_length)
    outputs = [text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
               for text in np.asarray(outputs).reshape(-1)]
    return outputs[0] if single else outputs
