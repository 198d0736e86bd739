"""Training on several devices or machines with TensorFlow's own engine, `tf.distribute`.

Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy` ("Attempt to
convert a value (PerReplica:...) ... to a Tensor", keras-team/keras#20585),
so zoo trains with its own step there: `strategy.run` of a GradientTape step,
the loss averaged over the *global* batch (`tf.nn.compute_average_loss`) and
`model.optimizer.apply`. The same loop runs every strategy:

    auto          multi_worker if TF_CONFIG is set, else mirrored if this
                  machine has more than one device, else one device
    mirrored      every GPU of this machine (or every logical CPU device)
    multi_worker  one process per machine, the cluster read from TF_CONFIG

What the loop guarantees (tests/test_distributed.py):
- Each global batch is the same examples as one process would take with the
  same seed: each epoch is one seeded permutation, cut to whole global
  batches (the rest, fewer than one global batch, is left out that epoch and
  reported), then element `i` goes to input pipeline `i % pipelines`.
- Dropout masks are a function of (seed, epoch, step, the example's place in
  the global batch), not of the replica: every replica draws the whole
  global batch's mask from one stateless seed and keeps its own examples'
  rows (`_GlobalBatchDropout`). So n workers drop what one process drops,
  and a resumed epoch draws the masks an uninterrupted run drew (the Keras
  layers' seed-generator state, which no checkpoint holds, is not read).
- Gradients are clipped (clipnorm / global_clipnorm / clipvalue) after the
  all-reduce, as one device clips the whole batch's gradient; Keras's
  optimizer clips each replica's part before summing, which is another
  update whenever clipping is active.
- Metrics are sums over all replicas; validation runs on every worker on the
  whole validation split (same weights, so the same early-stopping decision
  everywhere without another collective).
- A worker that dies (killed, crashed, unreachable) stops the others within
  TF's heartbeat timeout (10 s) with `WorkerLostError`, one line naming it
  and what to do: start every worker again, training resumes from the last
  epoch all of them saved. After a normal finish every worker waits at exit
  for the others (a coordination-service barrier), so none is reported as
  crashed while the chief still writes the model.
- Only the chief prints progress and writes `model.keras` and the report.
  Each worker keeps its own checkpoints in `<out>/distributed-backup/worker-<i>`
  (TF's rule: workers never write to the same file); a restarted job resumes
  from the newest epoch every worker has (agreed by an all-gather), and the
  backups are removed when training ends.
"""

import atexit
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import socket
import threading
import time

import numpy as np
import tensorflow as tf

from zoo import interrupts

STRATEGIES = ("auto", "mirrored", "multi_worker")
CLIPPING = ("clipnorm", "global_clipnorm", "clipvalue")
BACKUP_DIRNAME = "distributed-backup"
# How long a finished worker waits at exit for the others (the chief saves and evaluates the model first).
EXIT_BARRIER_SECONDS = 30 * 60


class WorkerLostError(ValueError):
    """Another worker of a multi-worker job stopped answering (killed, crashed, unreachable)."""


@dataclasses.dataclass
class Cluster:
    """A strategy and where this process sits in it.

    `tasks` names the members for messages: TF's task name (`/job:worker/task:1`)
    to `"worker 1 (host:port)"`; `task` is this process's TF task name.
    """

    strategy: tf.distribute.Strategy
    name: str
    num_workers: int = 1
    worker_index: int = 0
    tasks: dict = dataclasses.field(default_factory=dict)
    task: str = ""
    # Set when a peer was lost: the job is over for this process, no exit barrier.
    broken: bool = False

    @property
    def is_chief(self):
        return self.worker_index == 0

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    def describe(self, global_batch_size):
        per_replica = global_batch_size // self.num_replicas
        return {"strategy": self.name, "workers": self.num_workers, "replicas": self.num_replicas,
                "global_batch_size": global_batch_size, "per_replica_batch_size": per_replica}


# One strategy per kind and process, reused by every later training run: a second MirroredStrategy over
# the same devices numbers its collectives from the same instance keys as the first, and the runtime,
# which remembers each instance's shapes, aborts the second run's first all-reduce ("Shape mismatch in
# the collective instance 100"); a second MultiWorkerMirroredStrategy cannot be made at all.
_CLUSTERS = {}


def make_cluster(name="auto"):
    """The `Cluster` for strategy `name` (see the module docstring); the same one on every call in a process.

    A `Cluster` (your own strategy) is returned as it is.
    """
    if isinstance(name, Cluster):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        name = "multi_worker" if os.environ.get("TF_CONFIG") else "mirrored"
    if name == "multi_worker":
        config = read_tf_config()
        key = (name, json.dumps(config, sort_keys=True))
        if key not in _CLUSTERS:
            workers = config["cluster"].get("chief", []) + config["cluster"]["worker"]
            index = config["task"]["index"] + (len(config["cluster"].get("chief", []))
                                               if config["task"]["type"] == "worker" else 0)
            tasks = {f"/job:{job}/task:{i}": f"{job} {i} ({address})"
                     for job in ("chief", "worker") for i, address in enumerate(config["cluster"].get(job, []))}
            cluster = Cluster(tf.distribute.MultiWorkerMirroredStrategy(), "multi_worker", len(workers), index,
                              tasks, f"/job:{config['task']['type']}/task:{config['task']['index']}")
            atexit.register(_wait_for_the_others, cluster)
            _CLUSTERS[key] = cluster
        return _CLUSTERS[key]
    devices = [device.name for device in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    key = (name, tuple(devices))
    if key not in _CLUSTERS:
        _CLUSTERS[key] = Cluster(tf.distribute.MirroredStrategy(devices), "mirrored")
    return _CLUSTERS[key]


def _wait_for_the_others(cluster):
    """At exit, wait until every worker gets here: a worker that exits first stops sending heartbeats, and the
    coordination service (in the chief) then logs it as crashed ("StartAbort ... The tasks have crashed")."""
    if cluster.broken:
        return
    try:
        from tensorflow.python.eager import context

        context.context().wait_at_barrier("zoo.distributed:exit", EXIT_BARRIER_SECONDS * 1000)
    except (tf.errors.OpError, ValueError):  # another worker died meanwhile: nothing left to wait for
        pass


def lost_peer_error(error, cluster, resume_epoch):
    """A `WorkerLostError` naming the member(s) `error` (a collective's failure) blames, and what to do."""
    named = []
    for job, index in re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", str(error)):
        task = f"/job:{job}/task:{index}"
        if task != cluster.task and task in cluster.tasks and cluster.tasks[task] not in named:
            named.append(cluster.tasks[task])
    who = " and ".join(named) or "another worker (" + ", ".join(
        name for task, name in cluster.tasks.items() if task != cluster.task) + ")"
    return WorkerLostError(
        f"{who} stopped answering (killed, crashed or unreachable); start every worker again with the same "
        f"command: training resumes from the last epoch all of them saved (epoch {resume_epoch} on this one)")


def local_tf_configs(num_workers):
    """TF_CONFIG values (JSON) for `num_workers` worker processes on 127.0.0.1, each on a free port: the
    two-machine layout tried on one machine (zoo's tests and benchmarks start workers this way)."""
    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        workers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]


def read_tf_config():
    """TF_CONFIG, checked: `{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("strategy 'multi_worker' needs TF_CONFIG, e.g. "
                         '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG: not JSON ({error.msg})") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker", []), list) or not (
            cluster.get("worker") or cluster.get("chief")):
        raise ValueError("TF_CONFIG: field 'cluster.worker': expected a list of 'host:port' addresses")
    cluster.setdefault("worker", [])
    if not isinstance(task, dict) or task.get("type") not in ("worker", "chief"):
        raise ValueError(f"TF_CONFIG: field 'task.type': expected 'worker' or 'chief', got "
                         f"{task.get('type') if isinstance(task, dict) else task!r}")
    members = cluster.get(task["type"], [])
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ValueError(f"TF_CONFIG: field 'task.index': expected an integer in [0, {len(members)}), got {index!r}")
    return config


@dataclasses.dataclass
class FitResult:
    history: dict
    best_epoch: int
    seconds: float
    examples_per_second: float
    # For the report: strategy, workers, replicas, global and per-replica batch,
    # resumed_from_epoch, examples_left_out_per_epoch.
    layout: dict


def fit(model, train, validation, cluster, *, epochs, global_batch_size, seed, out_dir, from_logits,
        preprocess=None, monitor=None, patience=None, verbose=1):
    """Train `model` (built in `cluster.strategy.scope()`) with zoo's distributed step.

    Args:
        train, validation: `(x, y)`; x a list of texts or a dict of arrays.
        preprocess: applied to each batch's x in tf.data (a classifier's
            preprocessor; None for id windows).
        monitor: "val_accuracy" to keep the best epoch and stop early after
            `patience` epochs without improvement (as zoo's `fit` path does);
            None keeps the last epoch.
    Returns a `FitResult`; `model` holds the kept weights.
    """
    strategy = cluster.strategy
    if global_batch_size % cluster.num_replicas:
        raise ValueError(f"batch_size {global_batch_size} must be a multiple of the {cluster.num_replicas} replicas")
    per_replica = global_batch_size // cluster.num_replicas
    train_x, train_y = train
    count = len(train_y)
    steps = count // global_batch_size
    if steps < 1:
        raise ValueError(f"only {count} training examples for the global batch size {global_batch_size}")
    layout = cluster.describe(global_batch_size)
    if verbose and cluster.is_chief:
        print("Training with " + ", ".join(f"{key} {value}" for key, value in layout.items()), flush=True)
    loss_object = _per_example_loss(from_logits)

    def epoch_dataset(epoch):
        order = epoch_order(count, global_batch_size, seed, epoch)

        # Each example's place in its global batch travels with it, whichever replica it is dealt to.
        positions = np.arange(len(order), dtype=np.int32) % global_batch_size

        def dataset_fn(context):
            dataset = tf.data.Dataset.from_tensor_slices((_take(train_x, order), np.asarray(train_y)[order], positions))
            dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
            dataset = dataset.batch(per_replica, drop_remainder=True)
            if preprocess is not None:
                dataset = dataset.map(lambda x, y, p: (preprocess(x), y, p), num_parallel_calls=tf.data.AUTOTUNE)
            return dataset.prefetch(tf.data.AUTOTUNE)

        return strategy.distribute_datasets_from_function(dataset_fn)

    clipping = {key: getattr(model.optimizer, key) for key in CLIPPING}

    @tf.function
    def train_step(x, y, positions, step_seed):
        def step(x, y, positions):
            # What the model's own train_step runs its forward pass in (a classifier's Naive Bayes branch
            # scores each training example leave-one-out), so this step trains what `fit` would.
            context = model.training_context(y) if hasattr(model, "training_context") else contextlib.nullcontext()
            dropout = _GlobalBatchDropout(step_seed, positions, global_batch_size)
            with tf.GradientTape() as tape, context, dropout:
                outputs = model(x, training=True)
                per_example = loss_object(y, outputs)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            gradients = tape.gradient(loss, model.trainable_variables)
            gradients = _sum_and_clip(gradients, clipping, cluster.num_replicas)
            model.optimizer.apply(gradients, model.trainable_variables)
            return loss, _correct(outputs, y)

        loss, correct = strategy.run(step, args=(x, y, positions))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))

    if not model.optimizer.built:
        # Built lazily inside the first replica step its slot variables would not be mirrored.
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    evaluate = evaluator(model, validation, global_batch_size, preprocess, from_logits)
    state = _State(model, cluster, pathlib.Path(out_dir) / BACKUP_DIRNAME)
    with _peers_watched(cluster, state):
        start_epoch = state.restore()
    history = state.history
    started, trained_epochs = time.perf_counter(), 0
    with _clipping_taken_from(model.optimizer), interrupts.interruptible() as interrupt, \
            _peers_watched(cluster, state):
        for epoch in range(start_epoch, epochs):
            epoch_started = time.perf_counter()
            total_loss = total_correct = 0.0
            for step_index, (x, y, positions) in enumerate(epoch_dataset(epoch)):
                loss, correct = train_step(x, y, positions, seed_of_step(seed, epoch, step_index))
                interrupt.raise_if_requested()  # a Ctrl-C a library swallowed (zoo.interrupts)
                total_loss += float(loss)
                total_correct += float(correct)
            trained_epochs += 1
            logs = {"loss": total_loss / steps, "accuracy": total_correct / (steps * global_batch_size), **evaluate()}
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            stop = state.end_epoch(epoch, logs, monitor, patience)
            if verbose and cluster.is_chief:
                figures = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - epoch_started:.1f}s - {figures}", flush=True)
            if stop:
                break
    seconds = time.perf_counter() - started
    best_epoch = state.finish(monitor)
    examples = trained_epochs * steps * global_batch_size
    layout.update(resumed_from_epoch=start_epoch, examples_left_out_per_epoch=count - steps * global_batch_size)
    return FitResult(history, best_epoch, seconds, examples / seconds if seconds else 0.0, layout)


def epoch_order(count, global_batch_size, seed, epoch):
    """The training examples of `epoch`, in order: one seeded permutation, the same on every worker, cut to
    whole global batches (the rest is left out this epoch); consecutive runs of `global_batch_size` are the steps."""
    steps = count // global_batch_size
    return np.random.default_rng([seed, epoch]).permutation(count)[: steps * global_batch_size]


# What a collective raises when a peer is gone: UNAVAILABLE (heartbeat timeout, connection reset), or
# ABORTED / CANCELLED when another failure aborted it first.
PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError)


@contextlib.contextmanager
def _peers_watched(cluster, state):
    """A collective failing because another worker is gone becomes a `WorkerLostError` (several workers only).

    Any failure marks the cluster broken: this process then exits at once
    (no exit barrier), and the others learn of it from the missing heartbeats.
    """
    try:
        yield
    except PEER_FAILURES as error:
        cluster.broken = True
        if cluster.num_workers <= 1:
            raise
        raise lost_peer_error(error, cluster, int(state.epoch)) from None
    except BaseException:
        cluster.broken = True
        raise


def seed_of_step(seed, epoch, step):
    """The stateless seed of one training step's random draws: the same on every worker, and again on resume."""
    return tf.constant(np.random.default_rng([seed, epoch, step]).integers(2**62, size=2), dtype=tf.int64)


class _GlobalBatchDropout:
    """Within the block (one replica's forward pass, as traced), Keras's dropout draws masks for the global batch.

    Keras's `Dropout` (and a recurrent cell's dropout) asks the backend for a
    mask of the replica's own shape, seeded from the layer's seed generator:
    each replica would draw other masks than one process draws for the same
    examples, and the generator's state is in no checkpoint. Here every
    dropout call `k` of the step instead draws the mask of the whole global
    batch from `fold_in(step_seed, k)` and keeps the rows of the replica's
    examples (`positions`, each one's place in the global batch). Rows
    being examples, the mask of an example is the one one process gives it.
    The replaced function only acts on the thread that entered the block
    (MirroredStrategy traces each replica on its own thread); anything else
    calls Keras's own.
    """

    _active = threading.local()
    _lock = threading.Lock()
    _installs = 0
    _keras_dropout = None

    def __init__(self, step_seed, positions, global_batch_size):
        self.step_seed = step_seed
        self.positions = positions
        self.global_batch_size = global_batch_size
        self.calls = 0

    def __enter__(self):
        from keras.src import backend

        with _GlobalBatchDropout._lock:
            if _GlobalBatchDropout._installs == 0:
                _GlobalBatchDropout._keras_dropout = backend.random.dropout
                backend.random.dropout = _GlobalBatchDropout._dispatch
            _GlobalBatchDropout._installs += 1
        _GlobalBatchDropout._active.current = self
        return self

    def __exit__(self, *exc_info):
        from keras.src import backend

        _GlobalBatchDropout._active.current = None
        with _GlobalBatchDropout._lock:
            _GlobalBatchDropout._installs -= 1
            if _GlobalBatchDropout._installs == 0:
                backend.random.dropout = _GlobalBatchDropout._keras_dropout

    @staticmethod
    def _dispatch(inputs, rate, noise_shape=None, seed=None):
        current = getattr(_GlobalBatchDropout._active, "current", None)
        if current is None or rate in (0.0, 1.0):
            return _GlobalBatchDropout._keras_dropout(inputs, rate, noise_shape=noise_shape, seed=seed)
        return current.dropout(inputs, rate, noise_shape)

    def dropout(self, inputs, rate, noise_shape):
        inputs = tf.convert_to_tensor(inputs)
        shape = tf.shape(inputs)
        if noise_shape is not None:
            shape = tf.stack([shape[i] if size is None else size for i, size in enumerate(noise_shape)])
        seed = tf.random.experimental.stateless_fold_in(self.step_seed, self.calls)
        self.calls += 1
        if noise_shape is not None and noise_shape[0] == 1:  # one mask shared by the batch
            keep = tf.random.stateless_uniform(shape, seed) >= rate
        else:
            whole_batch = tf.concat([[self.global_batch_size], shape[1:]], axis=0)
            keep = tf.gather(tf.random.stateless_uniform(whole_batch, seed) >= rate, self.positions)
        return tf.where(keep, inputs / tf.cast(1.0 - rate, inputs.dtype), tf.zeros_like(inputs))


def _sum_and_clip(gradients, clipping, num_replicas):
    """Clip the all-reduced gradient as one device would, then hand each replica 1/n of it.

    The optimizer's `apply` sums the replicas' gradients again (its own
    all-reduce), so each replica passes `clipped / n`: the sum is the
    clipped whole-batch gradient.
    """
    if not any(value is not None for value in clipping.values()):
        return gradients
    present = [index for index, gradient in enumerate(gradients) if gradient is not None]
    summed = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, [gradients[index] for index in present])
    if clipping["global_clipnorm"] is not None:
        summed, _ = tf.clip_by_global_norm(summed, clipping["global_clipnorm"])
    elif clipping["clipnorm"] is not None:
        summed = [tf.clip_by_norm(gradient, clipping["clipnorm"]) for gradient in summed]
    else:
        summed = [tf.clip_by_value(gradient, -clipping["clipvalue"], clipping["clipvalue"]) for gradient in summed]
    gradients = list(gradients)
    for index, gradient in zip(present, summed):
        gradients[index] = gradient / num_replicas
    return gradients


@contextlib.contextmanager
def _clipping_taken_from(optimizer):
    """The optimizer's own clipping off while zoo's step clips (`_sum_and_clip`); restored after."""
    saved = {key: getattr(optimizer, key) for key in CLIPPING}
    for key in CLIPPING:
        setattr(optimizer, key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(optimizer, key, value)


def _per_example_loss(from_logits):
    def loss(y, outputs):
        per_element = tf.keras.losses.sparse_categorical_crossentropy(y, outputs, from_logits=from_logits)
        # A sequence model's per-token losses: one mean per example, as Keras's
        # "sum_over_batch_size" weighs every token the same.
        return tf.reduce_mean(tf.reshape(per_element, [tf.shape(per_element)[0], -1]), axis=-1)

    return loss


def _correct(outputs, y):
    """Summed over the batch: each example's share of right predictions (its tokens, for a sequence)."""
    predictions = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    right = tf.cast(tf.equal(predictions, tf.cast(y, tf.int32)), tf.float32)
    return tf.reduce_sum(tf.reduce_mean(tf.reshape(right, [tf.shape(right)[0], -1]), axis=-1))


def _take(x, order):
    if isinstance(x, dict):
        return {key: np.asarray(value)[order] for key, value in x.items()}
    return tf.constant([x[i] for i in order], dtype=tf.string)


def evaluator(model, validation, batch_size, preprocess, from_logits):
    """A function giving `{"val_loss", "val_accuracy"}` over the whole split, run on every worker (no collective).

    Keras's `evaluate` and `predict` fail under MultiWorkerMirroredStrategy
    as `fit` does (keras-team/keras#20585).
    """
    loss_object = _per_example_loss(from_logits)
    x, y = validation
    dataset = tf.data.Dataset.from_tensor_slices((_take(x, np.arange(len(y))), np.asarray(y))).batch(batch_size)
    if preprocess is not None:
        dataset = dataset.map(lambda x, y: (preprocess(x), y))

    @tf.function
    def figures(x, y):
        outputs = model(x, training=False)
        return tf.reduce_sum(loss_object(y, outputs)), _correct(outputs, y)

    def evaluate():
        total_loss = total_correct = 0.0
        for batch_x, batch_y in dataset:
            loss, correct = figures(batch_x, batch_y)
            total_loss, total_correct = total_loss + float(loss), total_correct + float(correct)
        return {"val_loss": total_loss / len(y), "val_accuracy": total_correct / len(y)}

    return evaluate


class _State:
    """Checkpoints of one worker (weights, optimizer, epoch, early-stopping state) and the best weights."""

    def __init__(self, model, cluster, backup_root):
        self.cluster = cluster
        self.directory = backup_root / f"worker-{cluster.worker_index}"
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_value = tf.Variable(-math.inf, dtype=tf.float64, trainable=False)
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=self.epoch,
                                         best_value=self.best_value, best_epoch=self.best_epoch, wait=self.wait)
        self.latest = tf.train.CheckpointManager(checkpoint, self.directory / "latest", max_to_keep=2)
        self.best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), self.directory / "best", max_to_keep=1)
        self.history = {}

    def restore(self):
        """The epoch to start from: the newest one every worker has a checkpoint of."""
        mine = {int(path.rsplit("-", 1)[1]): path for path in self.latest.checkpoints}
        newest = _agree_on_minimum(self.cluster, max(mine, default=0))
        if newest == 0:
            return 0
        if newest not in mine:
            raise RuntimeError(f"{self.directory}: no checkpoint of epoch {newest}, which the other workers resume "
                               f"from; remove {self.directory.parent} to start the job over")
        self.latest.checkpoint.restore(mine[newest]).expect_partial()
        history_path = self.directory / "history.json"
        self.history = json.loads(history_path.read_text()) if history_path.is_file() else {}
        self.history = {key: values[:newest] for key, values in self.history.items()}
        return newest

    def end_epoch(self, epoch, logs, monitor, patience):
        """Early stopping and the best weights (as Keras's EarlyStopping + ModelCheckpoint); True to stop."""
        stop = False
        if monitor is not None:
            value = logs[monitor]
            if value > float(self.best_value):
                self.best_value.assign(value)
                self.best_epoch.assign(epoch + 1)
                self.wait.assign(0)
                self.best.save(checkpoint_number=epoch + 1)
            else:
                self.wait.assign_add(1)
                stop = patience is not None and int(self.wait) >= patience
        self.epoch.assign(epoch + 1)
        self.latest.save(checkpoint_number=epoch + 1)
        (self.directory / "history.json").write_text(json.dumps(self.history))
        return stop

    def finish(self, monitor):
        """Restore the best epoch's weights (if monitored), remove this worker's backups; the kept epoch."""
        kept = int(self.epoch)
        if monitor is not None and self.best.latest_checkpoint:
            self.best.checkpoint.restore(self.best.latest_checkpoint).expect_partial()
            kept = int(self.best_epoch)
        shutil.rmtree(self.directory, ignore_errors=True)
        try:
            self.directory.parent.rmdir()  # the last worker to finish (on this machine) removes it
        except OSError:
            pass
        return kept


def _agree_on_minimum(cluster, value):
    """The smallest of every worker's `value` (an all-gather; just `value` on one worker)."""
    if cluster.num_workers <= 1:
        return value
    strategy = cluster.strategy

    @tf.function
    def gather():
        local = strategy.run(lambda: tf.constant([value], dtype=tf.int64))
        return tf.reduce_min(strategy.gather(local, axis=0))

    return int(gather())
