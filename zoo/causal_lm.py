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
import json
import math
import pathlib
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
from zoo.saving import MODEL_FILENAME, REPORT_FILENAME, check_folder, write_atomically
from zoo.training import check_training_arguments, library_versions

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
    check_folder(out_dir, "out_dir")
    corpus = load_corpus(data, encoding=encoding)
    train_corpus, validation_corpus = corpus.split(validation_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    config = dict(spec.default_config, **overrides)
    if config["tokenizer"] == "train" and config.get("vocabulary") is None:
        # The vocabulary is part of the model: learn it on the training part
        # only, and keep it beside the checkpoints so a resumed run reuses it.
        vocabulary_dir = out_dir / "tokenizer"
        if not (vocabulary_dir / bpe.MERGES_FILENAME).is_file():
            vocabulary, merges = bpe.train_byte_level_bpe(train_corpus.documents, config["bpe_vocabulary_size"])
            bpe.write_vocabulary_files(vocabulary_dir, vocabulary, merges)
        overrides["vocabulary"], overrides["merges"] = bpe.vocabulary_files(vocabulary_dir)
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
    callbacks = [
        TokensPerSecond(batch_size * sequence_length),
        keras.callbacks.BackupAndRestore(str(out_dir / "backup"), delete_checkpoint=True),
        keras.callbacks.ModelCheckpoint(str(out_dir / "checkpoints" / "epoch_{epoch:03d}.weights.h5"),
                                        save_weights_only=True),
        *callbacks,
    ]
    started = time.perf_counter()
    with interrupts.interruptible() as interrupt:
        history = trainer.fit(train_data, validation_data=validation_data, epochs=epochs,
                              callbacks=callbacks + [interrupts.InterruptCheck(interrupt)], verbose=verbose)
    seconds = time.perf_counter() - started
    final = trainer.evaluate(validation_data, verbose=0, return_dict=True)

    report = _report(facts, history.history, seconds, initial["loss"], final["loss"],
                     jit_compile=jit_compile, tokens_per_second=history.history.get("tokens_per_second", [None])[-1])
    return _save(model, out_dir, report)


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
    model_path = out_dir / MODEL_FILENAME
    write_atomically(model_path, model.save)
    write_atomically(out_dir / REPORT_FILENAME, lambda path: pathlib.Path(path).write_text(json.dumps(report, indent=2)))
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
