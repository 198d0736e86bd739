"""Training examples/s with tf.distribute: one worker vs two worker processes on this machine.

    python -m benchmarks.distributed [--model gru_classifier] [--examples 4000] [--epochs 2] [--repeats 3]

Every arm is `zoo train` in its own processes (peers sharing a process share its thread pools), on the
same seeded slice of rt-polarity, with the same global batch; the arms take turns, their order rotated
every repeat, so drift over minutes falls on all of them alike:

- `keras fit`: `zoo train` without a strategy (Keras's `fit`, the single-machine path);
- `1 worker`: `--strategy multi_worker` with a one-worker TF_CONFIG (zoo's distributed loop, 1 replica);
- `2 workers`: two `--strategy multi_worker` processes on 127.0.0.1, the global batch split between them.

Examples/s is the chief's `train_examples_per_second` (train_report.json): training examples over the
whole of training, per-epoch validation and (distributed) the per-epoch backup included, so it is what a
user waits for. Writes `results/distributed.json` and prints the markdown table; on a 2-core machine two
workers share the two cores, so no speed-up is expected, and the ratio says what the collectives cost.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.timing import median_range

RESULTS = pathlib.Path(__file__).parent / "results"
ARMS = ("keras fit", "1 worker", "2 workers")


def _train(arm, data, out, model, epochs, batch_size):
    from zoo.distributed import local_tf_configs

    command = [sys.executable, "-m", "zoo", "train", model, "--data", str(data), "--out", str(out),
               "--epochs", str(epochs), "--patience", str(epochs), "--batch-size", str(batch_size)]
    workers = {"keras fit": 0, "1 worker": 1, "2 workers": 2}[arm]
    environments = [dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")]
    if workers:
        command += ["--strategy", "multi_worker"]
        environments = [dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=tf_config)
                        for tf_config in local_tf_configs(workers)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for env in environments]
    try:
        errors = [process.communicate(timeout=3600)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    for process, error in zip(processes, errors):
        if process.returncode:
            raise RuntimeError(f"{arm}: zoo train exited {process.returncode}: {error.strip()[-2000:]}")
    report = json.loads((out / "train_report.json").read_text())
    return report["train_examples_per_second"], report.get("distributed")


def _write_slice(scratch, examples):
    from zoo.data import load_texts

    dataset = load_texts()
    order = np.random.default_rng(0).permutation(len(dataset))[:examples]
    path = scratch / "slice.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for index in order:
            file.write(json.dumps({"text": dataset.texts[index], "label": dataset.class_names[dataset.labels[index]]},
                                  ensure_ascii=False) + "\n")
    return path


def run(model="gru_classifier", examples=4000, epochs=2, repeats=3, batch_size=64):
    from benchmarks.limits import machine

    started = time.time()
    rows = {arm: [] for arm in ARMS}
    layouts = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-distributed-") as scratch:
        scratch = pathlib.Path(scratch)
        data = _write_slice(scratch, examples)
        for repeat in range(repeats):
            for arm in ARMS[repeat % len(ARMS):] + ARMS[: repeat % len(ARMS)]:
                out = scratch / f"{arm.replace(' ', '_')}-{repeat}"
                speed, layout = _train(arm, data, out, model, epochs, batch_size)
                rows[arm].append(speed)
                layouts[arm] = layout
                print(f"repeat {repeat + 1}/{repeats} {arm:>9}: {speed:7.1f} examples/s", flush=True)
    ratios = [two / one for two, one in zip(rows["2 workers"], rows["1 worker"])]
    loop_cost = [one / fit for one, fit in zip(rows["1 worker"], rows["keras fit"])]
    return {
        "model": model, "examples": examples, "validation_fraction": 0.1, "epochs": epochs,
        "global_batch_size": batch_size, "repeats": repeats, "examples_per_second": rows, "layouts": layouts,
        "two_workers_over_one": ratios, "one_worker_over_keras_fit": loop_cost,
        "seconds": round(time.time() - started, 1), "machine": machine(),
    }


def table(results):
    lines = [f"`{results['model']}` (registered defaults), {results['examples']} rt-polarity examples (90% trained), "
             f"{results['epochs']} epochs, global batch {results['global_batch_size']}, {results['repeats']} "
             f"repeats taking turns; machine: {results['machine'].get('cpu', '?')}, "
             f"{results['machine'].get('cores', '?')} cores.", "",
             "| arm | examples/s, median (range) |", "|---|---|"]
    for arm in ARMS:
        values = results["examples_per_second"][arm]
        lines.append(f"| {arm} | {median_range(values)} |")
    lines += ["", f"2 workers / 1 worker: {median_range(results['two_workers_over_one'], 2, 'x')}; "
              f"1 worker / keras fit: {median_range(results['one_worker_over_keras_fit'], 2, 'x')}."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gru_classifier")
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.model, args.examples, args.epochs, args.repeats, args.batch_size)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed.json").write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
