"""Training with tf.distribute (issues 16, 27): MirroredStrategy on two logical CPUs, MultiWorkerMirroredStrategy
with two worker processes on 127.0.0.1, a killed worker (named by the survivor) whose job resumes, and an
interrupted run that resumes bit for bit.

Every run trains the same tiny GRU classifier, with its default dropout, on
the same seeded data and is compared with one process on one device through
the same loop: per-epoch losses within a relative 1e-4 and final weights
within an absolute 1e-4 (the replicas sum their gradients in another order,
so bit equality is not expected).
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import zoo
from tests import helpers

# Every test here trains, exports or starts processes: `make check` leaves them out.
pytestmark = pytest.mark.slow

EPOCHS = 6
GLOBAL_BATCH = 8


def with_default_dropout(config):
    """A test config with the family's default dropout: the test configs turn it off, and with it on each
    replica draws random masks, which must be the ones one process draws."""
    return {key: value for key, value in config.items() if key != "dropout"}


# A slow learner without the Naive Bayes branch: its best epoch comes after the resume point, so the
# kept weights were trained across the restart.
TINY = with_default_dropout(helpers.tiny_config("gru_classifier", learning_rate=0.002, naive_bayes_buckets=0))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """96 rows, a fifth of the labels flipped (seeded): validation accuracy moves from epoch to epoch."""
    import csv

    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    flips = np.random.default_rng(0).random(96) < 0.2
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for index, flip in enumerate(flips):
            label = int(helpers.LABELS[index % len(helpers.TEXTS)]) ^ int(flip)
            writer.writerow([f"{helpers.TEXTS[index % len(helpers.TEXTS)]} take {index % 9}", ["neg", "pos"][label]])
    return path


def run_in_child(call, logical_cpus=1):
    """Run `call` (Python source) in a fresh process with `logical_cpus` CPU devices (fixed when TensorFlow starts)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {logical_cpus})
        from zoo import distributed
        from zoo.causal_lm import train_causal_lm
        from zoo.training import train_classifier
    """) + call
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def train_in_child(data, out, strategy_code, logical_cpus=1, epochs=EPOCHS):
    run_in_child(f"train_classifier('gru_classifier', {str(data)!r}, out_dir={str(out)!r}, epochs={epochs}, "
                 f"batch_size={GLOBAL_BATCH}, patience={epochs}, strategy={strategy_code}, verbose=0, **{TINY!r})",
                 logical_cpus)
    return read_run(out)


def read_run(out):
    report = json.loads((out / "train_report.json").read_text())
    weights = keras.saving.load_model(out / "model.keras", safe_mode=True).get_weights()
    return report, weights


@pytest.fixture(scope="module")
def one_device(data, tmp_path_factory):
    return train_in_child(data, tmp_path_factory.mktemp("one") / "model",
                          'distributed.Cluster(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device")')


def assert_same_training(run, reference):
    (report, weights), (reference_report, reference_weights) = run, reference
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(report["history"][key], reference_report["history"][key], rtol=1e-4, atol=1e-6)
    assert report["best_epoch"] == reference_report["best_epoch"] > 2
    assert max(float(np.abs(a - b).max()) for a, b in zip(weights, reference_weights)) < 1e-4


def test_mirrored_on_two_logical_cpus_trains_as_one_device(data, one_device, tmp_path):
    run = train_in_child(data, tmp_path / "model", '"mirrored"', logical_cpus=2)
    assert run[0]["distributed"] == {"strategy": "mirrored", "workers": 1, "replicas": 2, "global_batch_size": 8,
                                     "per_replica_batch_size": 4, "resumed_from_epoch": 0,
                                     "examples_left_out_per_epoch": 86 % 8}
    assert_same_training(run, one_device)


def test_an_interrupted_run_resumes_to_the_uninterrupted_weights_bit_for_bit(data, tmp_path):
    """Dropout on: the resumed epochs draw the masks the uninterrupted run drew (no random state is replayed
    from its start), so the kept model is the same to the bit. Interrupted in-process after epoch 2's
    checkpoint, as Ctrl-C would; two replicas, so the masks are also dealt across devices."""
    train = (f"train_classifier('gru_classifier', {str(data)!r}, epochs={EPOCHS}, batch_size={GLOBAL_BATCH}, "
             f"patience={EPOCHS}, strategy='mirrored', verbose=0, **{TINY!r}, out_dir=")
    run_in_child(textwrap.dedent(f"""
        {train}{str(tmp_path / "whole")!r})
        end_epoch = distributed._State.end_epoch

        def end_epoch_then_interrupt(state, epoch, *args):
            stop = end_epoch(state, epoch, *args)
            if epoch + 1 == 2:
                raise KeyboardInterrupt("after epoch 2")
            return stop

        distributed._State.end_epoch = end_epoch_then_interrupt
        try:
            {train}{str(tmp_path / "resumed")!r})
            raise AssertionError("not interrupted")
        except KeyboardInterrupt:
            pass
        distributed._State.end_epoch = end_epoch
        {train}{str(tmp_path / "resumed")!r})
    """), logical_cpus=2)
    (whole, whole_weights), (resumed, resumed_weights) = read_run(tmp_path / "whole"), read_run(tmp_path / "resumed")
    assert resumed["distributed"]["resumed_from_epoch"] == 2
    assert resumed["history"] == whole["history"] and resumed["best_epoch"] == whole["best_epoch"] > 2
    for a, b in zip(whole_weights, resumed_weights):
        np.testing.assert_array_equal(a, b)


# `zoo train` (python -m zoo), the chief first sleeping past the coordination service's heartbeat timeout
# (10 s) once training is over, as a chief writing a large model does: a worker that exited meanwhile
# would be reported as crashed ("StartAbort ... The tasks have crashed").
SLOW_CHIEF = textwrap.dedent("""
    import json, os, sys, time
    from zoo import cli, training
    if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0:
        save = training.save_trained_model
        training.save_trained_model = lambda *args, **kwargs: (time.sleep(12), save(*args, **kwargs))[1]
    sys.exit(cli.main())
""")


def start_workers(data, out, epochs=EPOCHS, slow_chief=False):
    """Two `zoo train --strategy multi_worker` processes on 127.0.0.1, TF_CONFIG as on two machines."""
    from zoo.distributed import local_tf_configs

    command = [sys.executable, *(["-c", SLOW_CHIEF] if slow_chief else ["-m", "zoo"]), "train", "gru_classifier",
               "--data", str(data), "--out", str(out), "--epochs", str(epochs), "--patience", str(epochs),
               "--batch-size", str(GLOBAL_BATCH), "--strategy", "multi_worker"]
    for key, value in TINY.items():
        command += ["--set", f"{key}={value}"]
    processes = []
    for tf_config in local_tf_configs(2):
        # TensorFlow's error-level log lines stay on (as under `zoo train`): none may come after a normal finish.
        env = dict(os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="2")
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        processes[-1].tf_config = tf_config
    return processes


def finish(processes, timeout=300):
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert "StartAbort" not in stderr and "crashed" not in stderr, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


def test_two_worker_processes_train_as_one_device_and_only_the_chief_writes(data, one_device, tmp_path):
    out = tmp_path / "model"
    chief_output, worker_output = finish(start_workers(data, out, slow_chief=True))
    assert "distributed multi_worker: 2 workers, 2 replicas, global batch 8 (4 per replica)" in chief_output
    assert f"Epoch 1/{EPOCHS}" in chief_output and "Epoch" not in worker_output
    assert "the chief wrote the model" in worker_output
    assert sorted(path.name for path in out.iterdir()) == ["model.keras", "train_report.json"]
    assert_same_training(read_run(out), one_device)


def test_a_killed_worker_is_restarted_and_the_job_resumes_where_every_worker_was(data, one_device, tmp_path):
    out = tmp_path / "model"
    processes = start_workers(data, out)

    def every_worker_saved_epoch_2():
        # history.json is written after the epoch's checkpoint: both workers have epoch 2 to resume from.
        for index in range(2):
            try:
                history = json.loads((out / "distributed-backup" / f"worker-{index}" / "history.json").read_text())
            except (OSError, ValueError):
                return False
            if len(history.get("loss", [])) < 2:
                return False
        return True

    try:
        deadline = time.monotonic() + 300
        while not every_worker_saved_epoch_2():
            assert all(p.poll() is None for p in processes) and time.monotonic() < deadline, processes[0].stderr.read()
            time.sleep(0.05)
        processes[1].send_signal(signal.SIGKILL)
        # The chief's next collective fails once the coordination service misses the peer's heartbeats.
        _, chief_errors = processes[0].communicate(timeout=120)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert processes[0].returncode == 2
    address = json.loads(processes[1].tf_config)["cluster"]["worker"][1]
    last_line = chief_errors.strip().splitlines()[-1]
    assert re.fullmatch(rf"zoo train: error: worker 1 \({re.escape(address)}\) stopped answering \(killed, crashed "
                        r"or unreachable\); start every worker again with the same command: training resumes from "
                        r"the last epoch all of them saved \(epoch \d+ on this one\)", last_line), last_line
    assert not (out / "model.keras").exists()

    finish(start_workers(data, out))
    report, weights = read_run(out)
    assert report["distributed"]["resumed_from_epoch"] >= 2
    assert len(report["history"]["loss"]) == EPOCHS
    assert_same_training((report, weights), one_device)
    assert sorted(path.name for path in out.iterdir()) == ["model.keras", "train_report.json"]


ONE_DEVICE = 'distributed.Cluster(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device")'
# Below the tiny GPT-2's gradient norm at every step (measured at the first steps, batch 4: 1.29-1.34 for
# the full model, 0.059-0.069 for LoRA rank 2), so every step is clipped: one device clips the whole
# batch's gradient, which the replicas must reproduce (not clip their halves).
CLIPNORM = 0.02


@pytest.mark.parametrize("lora_rank", [None, 2], ids=["full", "lora"])
def test_gpt2_on_two_logical_cpus_trains_as_one_device_with_clipping_active(tmp_path, lora_rank):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS)
    runs = []
    for strategy, logical_cpus in [(ONE_DEVICE, 1), ('"mirrored"', 2)]:
        out = tmp_path / f"lm-{logical_cpus}"
        run_in_child(f"train_causal_lm('gpt2_tiny', {str(corpus)!r}, out_dir={str(out)!r}, epochs=2, batch_size=4, "
                     f"clipnorm={CLIPNORM}, lora_rank={lora_rank}, strategy={strategy}, verbose=0, "
                     f"**{with_default_dropout(helpers.tiny_config('gpt2_tiny'))!r})", logical_cpus)
        runs.append(read_run(out))
    (reference, reference_weights), (report, weights) = runs
    assert report["distributed"]["replicas"] == 2 and report["distributed"]["per_replica_batch_size"] == 2
    assert report["validation_loss"] < report["validation_loss_before"]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(report["history"][key], reference["history"][key], rtol=1e-4, atol=1e-6)
    # Next-token accuracy is an argmax: a near tie can flip under another summation order (measured: one
    # token of the epoch's 1,536 once), so it gets two tokens' worth.
    for key in ("accuracy", "val_accuracy"):
        np.testing.assert_allclose(report["history"][key], reference["history"][key], atol=2 / 1536)
    assert max(float(np.abs(a - b).max()) for a, b in zip(weights, reference_weights)) < 1e-4


# zoo's distributed step trains single-label classifiers and language models (a multi-label model
# under a strategy is refused in one line: tests/models/test_multi_label.py).
CLASSIFIERS = zoo.list_models(task="text-classification")


def test_every_classifier_family_trains_on_two_logical_cpus_as_on_one_device(data, tmp_path):
    # One child process for all families, each trained two epochs on one device and then mirrored: also
    # proves that training again in a process works (make_cluster reuses its strategy).
    run_in_child(textwrap.dedent(f"""
        from tests import helpers
        from tests.test_distributed import with_default_dropout
        for name in {CLASSIFIERS!r}:
            for label, strategy in [("one", {ONE_DEVICE}), ("mirrored", "mirrored")]:
                train_classifier(name, {str(data)!r}, out_dir=f"{tmp_path}/{{name}}-{{label}}", epochs=2,
                                 batch_size={GLOBAL_BATCH}, strategy=strategy, verbose=0,
                                 **with_default_dropout(helpers.tiny_config(name)))
    """), logical_cpus=2)
    for name in CLASSIFIERS:
        (reference, reference_weights), (report, weights) = (read_run(tmp_path / f"{name}-{label}")
                                                              for label in ("one", "mirrored"))
        assert report["distributed"]["replicas"] == 2, name
        for key in ("loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(report["history"][key], reference["history"][key], rtol=1e-4, atol=1e-6,
                                       err_msg=name)
        assert max(float(np.abs(a - b).max()) for a, b in zip(weights, reference_weights)) < 1e-4, name


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_the_distributed_step_trains_what_keras_fit_trains(data, tmp_path, name):
    """zoo's step against Keras's `fit` (the model's own train_step: its loss, the Naive Bayes branch's
    leave-one-out) on the same batches: `fit` is fed `distributed.epoch_order`'s examples."""
    import contextlib

    import tensorflow as tf

    from zoo import distributed
    from zoo.data import load_texts

    train, validation = load_texts(data).split(0.1, 1337)
    cluster = distributed.Cluster(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device")

    def build(scope):
        keras.utils.set_random_seed(1337)
        with scope:
            model = zoo.create_model(name, **helpers.tiny_config(name))
            model.adapt(train.texts, train.labels)
        return model

    ours = build(cluster.strategy.scope())
    fitted = distributed.fit(ours, (list(train.texts), train.labels), (list(validation.texts), validation.labels),
                             cluster, epochs=2, global_batch_size=GLOBAL_BATCH, seed=1337, out_dir=tmp_path,
                             from_logits=False, preprocess=ours.preprocessor, verbose=0)
    keras_fit = build(contextlib.nullcontext())
    texts, labels = np.asarray(train.texts, dtype=object), np.asarray(train.labels)
    losses = []
    for epoch in range(2):
        order = distributed.epoch_order(len(train), GLOBAL_BATCH, 1337, epoch)
        batches = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts[order])), labels[order]))
        losses += keras_fit.fit(batches.batch(GLOBAL_BATCH), epochs=1, verbose=0).history["loss"]
    np.testing.assert_allclose(fitted.history["loss"], losses, rtol=1e-4)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(ours.get_weights(), keras_fit.get_weights()))
    assert difference < 1e-4, f"{name}: weights differ by {difference}"


def test_the_distributed_step_trains_gpt2_as_keras_fit_does(tmp_path):
    """GPT-2's trainer (AdamW, warmup + cosine, global-norm clipping active at every step) through zoo's
    step on one device and through Keras's `fit` on the same batches."""
    import contextlib

    import tensorflow as tf

    from zoo import distributed
    from zoo.causal_lm import build_trainer, pack_tokens, tokenize_corpus, window_features, windows_dataset
    from zoo.data import load_corpus

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS)
    cluster = distributed.Cluster(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device")
    epochs, batch = 2, 4

    def build(scope, steps):
        keras.utils.set_random_seed(1337)
        with scope:
            model = zoo.create_model("gpt2_tiny", **helpers.tiny_config("gpt2_tiny"))
            return model, build_trainer(model, steps, clipnorm=CLIPNORM, jit_compile=False)

    model, _ = build(contextlib.nullcontext(), 1)
    windows = pack_tokens(tokenize_corpus(model.preprocessor.tokenizer, load_corpus(corpus)),
                          model.preprocessor.sequence_length)
    steps = epochs * (len(windows) // batch)

    ours, trainer = build(cluster.strategy.scope(), steps)
    fitted = distributed.fit(trainer, window_features(windows), window_features(windows[:batch]), cluster, epochs=epochs,
                             global_batch_size=batch, seed=1337, out_dir=tmp_path / "out", from_logits=True, verbose=0)
    theirs, keras_trainer = build(contextlib.nullcontext(), steps)
    losses = []
    for epoch in range(epochs):
        order = distributed.epoch_order(len(windows), batch, 1337, epoch)
        losses += keras_trainer.fit(windows_dataset(windows[order], batch), epochs=1, verbose=0).history["loss"]
    np.testing.assert_allclose(fitted.history["loss"], losses, rtol=1e-4)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(ours.get_weights(), theirs.get_weights()))
    assert difference < 1e-4, f"weights differ by {difference}"
