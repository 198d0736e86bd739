"""One trained, exported text classifier: inference latency per runtime, training speed.

Every runtime gets the same inputs (the first validation texts, or their
token ids) and the same protocol: warm-up calls (compilation, allocation),
then timed calls, one batch each, repeated in rounds with the runtimes' order
rotated each round; latency p50/p90 of all timed calls, throughput = batch
size / median call time, and ratios between runtimes one per round (quoted as
median and range). zoo's TensorFlow paths (Keras, SavedModel) run in this
process; every other runtime runs alone in a fresh process each round
(`benchmarks.runtime_process`, no TensorFlow in it), so no two runtimes'
thread pools compete for the cores. Runtimes:

- `keras predict (text)`: `model.predict` on raw strings, as a user calls it.
- `keras tf.function (token_ids)`: the token-id model (`zoo.export.
  tasks.text_classification`) in one `tf.function` with a `[None, sequence_length]` signature.
- `saved_model serving_default (text)` / `saved_model predict_token_ids`:
  the exported SavedModel's two signatures, loaded with `tf.saved_model.load`.
- `litert <variant>`: the exported `.tflite` files through
  `zoo.runtime.TextClassifierRunner` (ai-edge-litert, 2 threads, default XNNPACK
  delegate). The files take `[1, sequence_length]`, so a batch of 32 is 32 invokes.
- `mediapipe TextClassifier float32 (text)`: the app runtime, MediaPipe Tasks'
  TextClassifier (mediapipe 1.2.3, XNNPACK) on the exported float32 file from
  raw text, its own regex tokenizer from the file's metadata; one text per call.
- `onnxruntime float32` (and `dynamic_int8`): zoo's exported ONNX files
  (`onnx/model[.dynamic_int8].onnx`, written by `zoo.export.formats.onnx`: the
  recurrent families as ONNX's native LSTM/GRU/RNN ops with in-graph text
  lengths, the others by tf2onnx; ONNX Runtime's dynamic quantizer), run by
  ONNX Runtime's CPU provider with 2 intra-op threads and a dynamic batch.
- `executorch xnnpack float32` (the CNN classifier): PyTorch's phone runtime on the same
  weights (`benchmarks.executorch_peer`: a PyTorch twin, `torch.export` at a static batch of
  1 and 32, XNNPACK partitioner), built and checked in its own process.

Training speed: examples/s over a fixed number of `fit` steps after warm-up
steps (which include tracing).
"""

import importlib.metadata
import json
import pathlib
import statistics
import time
import traceback

import numpy as np

from benchmarks import executorch_peer, run_child
from benchmarks.timing import time_calls

THREADS = 2


def measure_classifier(model, export_path, validation, train, scratch, batch_sizes=(1, 32), warmup=3, repeats=20,
                       rounds=3, training_steps=20, training_warmup_steps=3, threads=THREADS, machine_limits=None):
    """Latency rows, artifact sizes/accuracy, ratios and training speed for one classifier.

    Args:
        model: the trained `TextClassifier` (preprocessor attached).
        export_path: the `zoo.export.export` version folder of that model.
        validation: the held-out `TextDataset` the export was validated on.
        train: its training split (training-speed batches).
        scratch: a folder for the ONNX files, the ExecuTorch programs and the child processes' inputs.
        rounds: every runtime is timed once a round (`warmup` + `repeats` calls per batch size), the order
            rotated each round; rows pool the calls of all rounds, ratios are one value a round.
        machine_limits: `{"memory_bandwidth": ..., "matmul": ...}` from `benchmarks.limits`, measured in
            this run: the batch-1 latency is then held against the file's FLOPs and bytes.
    """
    import tensorflow as tf

    from zoo.export.tasks.text_classification import token_id_model

    export_path = pathlib.Path(export_path)
    report = json.loads((export_path / "export_report.json").read_text())
    token_model = token_id_model(model)
    largest = max(batch_sizes)
    texts = [validation.texts[i % len(validation)] for i in range(largest)]
    token_ids = model.preprocessor.reference().encode(texts)
    validation_ids = model.preprocessor.reference().encode(list(validation.texts))
    keras_probabilities = np.asarray(model.predict(tf.constant(list(validation.texts)), batch_size=256, verbose=0))

    # LiteRT files are timed under XNNPACK (LiteRT's default), so their
    # accuracy is the export's XNNPACK figure, not the builtin kernels'; the
    # SavedModel's two signatures are two rows, as they are timed.
    artifacts = {}
    for name, figures in report["parity"].items():
        rows = {name: figures.get("xnnpack", figures)}
        if name == "saved_model":
            rows = {"saved_model (text)": figures, "saved_model (token_ids)": figures["token_ids"]}
        for row_name, row in rows.items():
            artifacts[row_name] = {"bytes": figures.get("bytes"), "accuracy": row.get("accuracy"),
                                   "max_abs_diff_vs_keras": row.get("max_abs_diff")}
    failures = dict(report.get("skipped", {}))
    scratch = pathlib.Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    np.save(scratch / "token_ids.npy", np.asarray(token_ids, np.int32))
    (scratch / "texts.json").write_text(json.dumps(texts), encoding="utf-8")

    # zoo's TensorFlow paths run here; every other runtime alone in a fresh process each round
    # (`benchmarks.runtime_process`), so no two runtimes' thread pools share the cores.
    runtimes = {}
    runtimes["keras predict (text)"] = (
        "keras", lambda batch: model.predict(texts[:batch], batch_size=batch, verbose=0))
    direct = tf.function(lambda ids: token_model(ids, training=False),
                         input_signature=[tf.TensorSpec([None, model.sequence_length], tf.int32)])
    runtimes["keras tf.function (token_ids)"] = ("keras", lambda batch: direct(tf.constant(token_ids[:batch])).numpy())

    loaded = tf.saved_model.load(str(export_path))
    by_text, by_ids = loaded.signatures["serving_default"], loaded.signatures["predict_token_ids"]
    runtimes["saved_model serving_default (text)"] = (
        "saved_model (text)", lambda batch: by_text(text=tf.constant(texts[:batch]))["probabilities"].numpy())
    runtimes["saved_model predict_token_ids"] = (
        "saved_model (token_ids)",
        lambda batch: by_ids(token_ids=tf.constant(token_ids[:batch]))["probabilities"].numpy())

    from zoo.runtime import artifact_filename

    def own_process(kind, path):
        inputs = {"texts": str(scratch / "texts.json")} if kind == "mediapipe" else {
            "token_ids": str(scratch / "token_ids.npy")}
        return dict(kind=kind, path=path, batch_sizes=list(batch_sizes), warmup=warmup, repeats=repeats,
                    threads=threads, **inputs)

    for artifact in [name for name in report["parity"] if name.startswith("litert ")]:
        path = export_path / "litert" / artifact_filename(artifact.split(" ", 1)[1], ".tflite")
        runtimes[artifact] = (artifact, own_process("litert", str(path)))
    # The app runtime: MediaPipe Tasks' TextClassifier on the same float32 file, raw text in
    # (its own tokenizer, from the file's metadata), one classify() per text.
    runtimes["mediapipe TextClassifier float32 (text)"] = (
        "litert float32", own_process("mediapipe", str(export_path / "litert" / "model.tflite")))

    # zoo's own ONNX files, as the export wrote and validated them (their figures are the export's).
    from zoo.export.formats import onnx, relative_path

    onnx_info = {"converter": f"tf2onnx {importlib.metadata.version('tf2onnx')} (zoo.export.formats.onnx)",
                 "opset": onnx.OPSET}
    for variant in ("float32", *onnx.VARIANTS):
        key = f"onnxruntime {variant}"
        if f"onnx {variant}" not in artifacts:
            failures[key] = report["skipped"].get(f"onnx {variant}", "not in the export")
            continue
        artifacts[key] = artifacts.pop(f"onnx {variant}")
        runtimes[key] = (key, own_process("onnxruntime", str(export_path / relative_path(onnx, variant))))
    if "onnxruntime float32" in runtimes:
        import onnx as onnx_proto

        ops = {node.op_type for node in onnx_proto.load(str(export_path / relative_path(onnx, "float32"))).graph.node}
        onnx_info["native_recurrent_ops"] = sorted(ops & {"LSTM", "GRU", "RNN"})

    if executorch_peer.available():
        try:
            programs = _executorch(model, token_ids, validation_ids, validation.labels, keras_probabilities,
                                   scratch / "executorch", artifacts)
            runtimes[EXECUTORCH] = (EXECUTORCH, own_process("executorch", programs))
        except NotImplementedError as error:  # only the CNN classifier has a PyTorch twin
            onnx_info["executorch"] = str(error)
        except Exception as error:
            failures["executorch"] = describe_error(error)
    else:
        failures["executorch"] = "executorch not installed (pip install '.[peers]')"

    rows = time_in_rounds(runtimes, batch_sizes, warmup, repeats, rounds, scratch, failures)

    latency_limits = None
    if machine_limits:
        try:
            latency_limits = batch_1_limits(export_path / "litert" / "model.tflite", rows, machine_limits)
        except Exception as error:
            failures["limits"] = describe_error(error)
    try:
        training = training_speed(model, train, steps=training_steps, warmup_steps=training_warmup_steps)
    except Exception as error:
        training = {"error": describe_error(error)}
        failures["training"] = training["error"]
    return {
        "parameters": int(model.count_params()),
        "sequence_length": int(model.sequence_length),
        # Texts are end-padded to sequence_length: a runtime that stops at each text's end (ONNX's
        # recurrent ops take sequence_lens) does this many steps of the window's.
        "timed_tokens_per_text": float((np.asarray(token_ids) != 0).sum(axis=1).mean()),
        "validation_examples": len(validation),
        "artifacts": artifacts,
        "inference": rows,
        "ratios": ratios(rows),
        "limits": latency_limits,
        "onnx": onnx_info,
        "training": training,
        "failures": failures,
    }


EXECUTORCH = "executorch xnnpack float32"


def _executorch(model, token_ids, validation_ids, labels, keras_probabilities, folder, artifacts):
    """`{batch: program path}`: the ExecuTorch peer's programs, built and checked in a process of their own
    (`benchmarks.executorch_peer`), its accuracy in `artifacts`."""
    from zoo.export.validate import compare

    # The timed texts are the validation texts from the first, repeated when there are fewer than 32.
    expected = keras_probabilities[np.arange(len(token_ids)) % len(keras_probabilities)]
    executorch_peer.save_inputs(model, token_ids, expected, folder, validation_ids)
    result = run_child(executorch_peer.__name__, folder, timeout=1800)
    figures = compare(keras_probabilities, np.load(folder / "validation_outputs.npy"), labels)
    artifacts[EXECUTORCH] = {"bytes": result["batches"]["1"]["bytes"], "accuracy": figures["accuracy"],
                             "max_abs_diff_vs_keras": figures["max_abs_diff"], "torch": result["torch"],
                             "executorch": result["executorch"]}
    return {batch: program["path"] for batch, program in result["batches"].items()}


def time_in_rounds(runtimes, batch_sizes, warmup, repeats, rounds, scratch, failures):
    """Latency rows: every runtime timed once a round, the order rotated each round.

    `runtimes`: `{name: (artifact, call or spec)}`; a callable `call(batch)` is timed in this process, a
    `benchmarks.runtime_process` spec in a fresh process of its own. A runtime that fails is reported in
    `failures` and left out of later rounds. Each row pools its calls over the rounds (p50, p90) and keeps
    each round's median (`round_p50_ms`), which the ratios pair round by round.
    """
    from zoo.export.formats import litert

    seconds = {(name, batch): [] for name in runtimes for batch in batch_sizes}
    round_p50 = {key: [] for key in seconds}
    names = list(runtimes)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if name in failures:
                continue
            artifact, how = runtimes[name]
            try:
                if callable(how):
                    measured = {batch: time_calls(lambda: how(batch), warmup, repeats) for batch in batch_sizes}
                else:
                    spec_path = scratch / "runtime_spec.json"
                    spec_path.write_text(json.dumps(how))
                    measured = {int(batch): values for batch, values in
                                run_child("benchmarks.runtime_process", spec_path, timeout=1800)["seconds"].items()}
            except Exception as error:
                failures[name] = describe_error(error)
                continue
            for batch, values in measured.items():
                seconds[name, batch].extend(values)
                round_p50[name, batch].append(1000.0 * statistics.median(values))
    rows = []
    for (name, batch), values in seconds.items():
        if not values or name in failures:
            continue
        # LiteRT files have a static batch: 1 (a batch is that many invokes), or 32 for "litert batch32".
        static = litert.target(name.split(" ", 1)[1]).batch_size if name.startswith("litert ") else None
        rows.append(dict(runtime=name, artifact=runtimes[name][0], batch_size=batch,
                         invokes_per_batch=-(-batch // static) if static else 1, **summarize(values, batch),
                         round_p50_ms=round_p50[name, batch]))
    return rows


def batch_1_limits(float32_file, rows, machine_limits):
    """The float32 LiteRT file's batch-1 latency against what its FLOPs and bytes need at this machine's
    matmul peak and read bandwidth (`benchmarks.limits`)."""
    from benchmarks import limits

    costs = limits.tflite_costs(float32_file)
    p50 = next(row["p50_ms"] for row in rows if row["runtime"] == "litert float32" and row["batch_size"] == 1)
    peak = machine_limits["matmul"]["gflops_per_second"]
    bandwidth = machine_limits["memory_bandwidth"]["read_gb_per_second"]
    compute_ms, memory_ms = costs["flops"] / peak / 1e6, costs["constant_bytes"] / bandwidth / 1e6
    return {"flops_per_example": costs["flops"], "constant_bytes_per_example": costs["constant_bytes"],
            "litert_float32_batch_1_p50_ms": p50, "achieved_gflops_per_second": costs["flops"] / p50 / 1e6,
            "compute_bound_ms": compute_ms, "bandwidth_bound_ms": memory_ms,
            "p50_over_bound": p50 / max(compute_ms, memory_ms)}


def summarize(seconds, batch_size):
    milliseconds = np.asarray(seconds) * 1000.0
    median = float(np.percentile(milliseconds, 50))
    return {
        "p50_ms": median,
        "p90_ms": float(np.percentile(milliseconds, 90)),
        "mean_ms": float(milliseconds.mean()),
        "calls": len(seconds),
        "examples_per_second": batch_size / (median / 1000.0),
    }


def ratios(rows):
    """Median-latency ratios the README reports side by side, one value a round (None when a runtime is missing)."""

    def ratio(numerator, denominator, batch):
        latency = {(row["runtime"], row["batch_size"]): row["round_p50_ms"] for row in rows}
        a, b = latency.get((numerator, batch)), latency.get((denominator, batch))
        return [x / y for x, y in zip(a, b)] if a and b and len(a) == len(b) else None

    return {
        "litert_float32_vs_onnxruntime_batch_1": ratio("litert float32", "onnxruntime float32", 1),
        "litert_batch32_vs_onnxruntime_batch_32": ratio("litert batch32", "onnxruntime float32", 32),
        "litert_batch32_vs_float32_batch_32": ratio("litert batch32", "litert float32", 32),
        "litert_float32_vs_executorch_batch_1": ratio("litert float32", EXECUTORCH, 1),
        "litert_batch32_vs_executorch_batch_32": ratio("litert batch32", EXECUTORCH, 32),
        # Runs before zoo's ONNX export wrote native recurrent ops timed that graph as a separate peer.
        "litert_float32_vs_onnxruntime_native_rnn_batch_1": ratio("litert float32", "onnxruntime native_rnn float32", 1),
        "litert_batch32_vs_onnxruntime_native_rnn_batch_32": ratio(
            "litert batch32", "onnxruntime native_rnn float32", 32),
        "mediapipe_vs_litert_float32_batch_1": ratio("mediapipe TextClassifier float32 (text)", "litert float32", 1),
        "litert_int8_vs_float32_batch_1": ratio("litert int8", "litert float32", 1),
        "litert_dynamic_int8_vs_float32_batch_1": ratio("litert dynamic_int8", "litert float32", 1),
        "saved_model_text_vs_token_ids_batch_1": ratio(
            "saved_model serving_default (text)", "saved_model predict_token_ids", 1),
        "saved_model_text_vs_token_ids_batch_32": ratio(
            "saved_model serving_default (text)", "saved_model predict_token_ids", 32),
        "keras_predict_vs_tf_function_batch_1": ratio("keras predict (text)", "keras tf.function (token_ids)", 1),
    }


def training_speed(model, train, batch_size=32, steps=20, warmup_steps=3):
    """Examples/s of `model.fit` over `steps` timed steps after `warmup_steps`.

    Runs on `model` itself (its weights change), so call it last.
    """
    import keras

    if getattr(model, "optimizer", None) is None:
        model.compile()
    step_seconds = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch >= warmup_steps:
                step_seconds.append(time.perf_counter() - self.started)

    dataset = train.to_tf_dataset(batch_size, shuffle=True, seed=0).repeat()
    model.fit(dataset, steps_per_epoch=steps + warmup_steps, epochs=1, callbacks=[StepTimer()], verbose=0)
    median = statistics.median(step_seconds)
    return {"batch_size": batch_size, "timed_steps": len(step_seconds), "warmup_steps": warmup_steps,
            "median_step_seconds": median, "examples_per_second": batch_size / median}


def describe_error(error):
    """One line: the exception type, its first message line and where it was raised."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" (at {pathlib.Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300] if str(error).strip() else ''}{place}"
