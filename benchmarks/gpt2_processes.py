"""GPT-2 fine-tuning and generation, zoo against Hugging Face, each side in its own process.

    python -m benchmarks.gpt2_processes [--shape gpt2_small] [--rounds 3] [--steps 8] [--new-tokens 64]

`benchmarks.gpt2` times both trainers in one process, taking turns step by step; there PyTorch and
TensorFlow share the CPU's two cores through two thread pools, which slowed the PyTorch side by 10-20%
here. This runs each side alone in a fresh process (TensorFlow is never imported into the PyTorch one),
the sides taking turns process by process, the order swapped every round, so drift over minutes falls
on both: per round a zoo/HF ratio, and the range over rounds.

Same protocol as `benchmarks.gpt2`: random weights in the registered shape, the same tinyshakespeare id
windows (batch 4 x 128; computed once by the parent and handed to both), AdamW with GPT-2's recipe and
global-norm clipping at 1.0, zoo with XLA; median step time after warm-up steps. Generation: greedy, prompt
"ROMEO:", `--new-tokens` new tokens, keras-hub `generate` (XLA) against `GPT2LMHeadModel.generate` (KV cache),
median of 3 calls after a warm-up call. A third side, `litert`, decodes with the app runtimes on the same
network (converted once by the parent, `benchmarks.gpt2.write_decoder`): zoo's LiteRT Generator and Google's
LiteRT-LM engine, float32 and int8 weights, 2 threads, no TensorFlow in its process; it also measures the
read bandwidth, so each decoder's tokens/s is quoted as a fraction of its bandwidth bound. The sides rotate
every round. Writes `results/gpt2_processes_<shape>.json`.
"""

import argparse
import importlib.metadata
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

from benchmarks.timing import median_range

RESULTS = pathlib.Path(__file__).parent / "results"
SIDES = ("zoo", "hugging face", "litert")
BATCH_SIZE, SEQUENCE_LENGTH, PROMPT = 4, 128, "ROMEO:"


def _timed_steps(step, steps, warmup_steps):
    seconds = []
    for index in range(warmup_steps + steps):
        started = time.perf_counter()
        step(index)
        if index >= warmup_steps:
            seconds.append(time.perf_counter() - started)
    return seconds


def _zoo_side(shape, windows, prompt_ids, steps, warmup_steps, new_tokens):
    import keras

    import zoo
    from benchmarks.gpt2 import keras_generation
    from zoo.causal_lm import build_trainer, windows_dataset

    keras.utils.set_random_seed(0)
    model = zoo.create_model(shape, dropout=0.0)
    trainer = build_trainer(model, steps + warmup_steps, jit_compile=True)
    batches = list(windows_dataset(windows, BATCH_SIZE))
    seconds = _timed_steps(lambda index: trainer.train_on_batch(*batches[index % len(batches)]), steps, warmup_steps)
    generation = keras_generation(model, PROMPT, new_tokens, 3)
    return seconds, generation["tokens_per_second"], {"keras": keras.__version__}


def _hugging_face_side(shape_facts, windows, prompt_ids, steps, warmup_steps, new_tokens):
    from benchmarks import hf_peer

    backbone = types.SimpleNamespace(**shape_facts)
    seconds = _timed_steps(hf_peer.training_step(backbone, windows, BATCH_SIZE, threads=2), steps, warmup_steps)
    generation = hf_peer.generation(backbone, prompt_ids, new_tokens, 3, threads=2)
    return seconds, generation["tokens_per_second"], hf_peer.versions()


def _litert_side(scratch, decoders, new_tokens):
    from benchmarks import gpt2, limits

    generation = {}
    for label, name in decoders.items():
        path = pathlib.Path(scratch) / "decoders" / name
        if label.startswith("litert_lm "):
            generation[label] = gpt2.litert_lm_generation(path, PROMPT, new_tokens, 3)["tokens_per_second"]
        else:
            generation[label] = gpt2.litert_generation(path, PROMPT, new_tokens, 3)["tokens_per_second"]
    versions = {}
    for package in ("ai-edge-litert", "litert-lm-api"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return generation, limits.memory_bandwidth(), versions


def child(side, scratch):
    """One side's run in this (fresh) process; prints its JSON row."""
    scratch = pathlib.Path(scratch)
    facts = json.loads((scratch / "facts.json").read_text())
    windows = np.load(scratch / "windows.npy")
    arguments = (windows, facts["prompt_ids"], facts["steps"], facts["warmup_steps"], facts["new_tokens"])
    if side == "litert":
        generation, bandwidth, versions = _litert_side(scratch, facts["decoders"], facts["new_tokens"])
        print(json.dumps({"generation_tokens_per_second": generation, "memory_bandwidth": bandwidth,
                          "versions": versions}))
        return
    if side == "zoo":
        seconds, generation, versions = _zoo_side(facts["shape"], *arguments)
    else:
        seconds, generation, versions = _hugging_face_side(facts["backbone"], *arguments)
    tokens = BATCH_SIZE * SEQUENCE_LENGTH
    print(json.dumps({"step_seconds": seconds, "training_tokens_per_second": tokens / statistics.median(seconds),
                      "generation_tokens_per_second": generation, "versions": versions}))


def _prepare(shape, scratch, steps, warmup_steps, new_tokens, cache_length=128):
    import zoo
    from benchmarks.gpt2 import training_windows
    from zoo.data import load_corpus
    from zoo.export.causal_lm_export import prompt_token_ids

    model = zoo.create_model(shape, dropout=0.0)
    windows = training_windows(model, load_corpus(), BATCH_SIZE, SEQUENCE_LENGTH, steps + warmup_steps)
    np.save(scratch / "windows.npy", windows)
    backbone = model.backbone
    facts = {"shape": shape, "steps": steps, "warmup_steps": warmup_steps, "new_tokens": new_tokens,
             "prompt_ids": [int(i) for i in prompt_token_ids(model, PROMPT)],
             "backbone": {key: int(getattr(backbone, key)) for key in (
                 "vocabulary_size", "max_sequence_length", "hidden_dim", "num_layers", "num_heads",
                 "intermediate_dim")}}
    # The app runtimes' files, converted once: the litert side only loads and runs them.
    from benchmarks import gpt2

    facts["decoders"], facts["decode_step_bytes"] = {}, {}
    (scratch / "decoders").mkdir()
    for kind, quantization in gpt2.DECODERS:
        label = f"{kind} {quantization or 'float32'}"
        path, costs = gpt2.write_decoder(model, kind, quantization, scratch / "decoders", cache_length)
        facts["decoders"][label] = path.name
        facts["decode_step_bytes"][label] = costs["constant_bytes"] + costs["input_bytes"]
        print(f"wrote {label}: {path.stat().st_size / 2**20:.0f} MiB", flush=True)
    (scratch / "facts.json").write_text(json.dumps(facts))
    return facts, backbone.count_params()


def run(shape="gpt2_small", rounds=3, steps=8, warmup_steps=2, new_tokens=64):
    from benchmarks import hf_peer
    from benchmarks.run import machine

    if not hf_peer.available():
        raise SystemExit(f"the peer is missing: {hf_peer.INSTALL_HINT}")
    started = time.time()
    rows = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-gpt2-") as scratch:
        facts, parameters = _prepare(shape, pathlib.Path(scratch), steps, warmup_steps, new_tokens)
        for round_index in range(rounds):
            # Every side takes every place in the order once in len(SIDES) rounds.
            for side in SIDES[round_index % len(SIDES):] + SIDES[:round_index % len(SIDES)]:
                finished = subprocess.run([sys.executable, "-m", "benchmarks.gpt2_processes", "--child", side,
                                           "--scratch", scratch], capture_output=True, text=True, timeout=3600,
                                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
                if finished.returncode:
                    raise RuntimeError(f"{side}: exited {finished.returncode}: {finished.stderr.strip()[-2000:]}")
                row = json.loads(finished.stdout.strip().splitlines()[-1])
                rows[side].append(row)
                if side == "litert":
                    print(f"round {round_index + 1}/{rounds} {side:>12}: decode " + ", ".join(
                        f"{label} {value:.1f}" for label, value in row["generation_tokens_per_second"].items())
                        + " tokens/s", flush=True)
                else:
                    print(f"round {round_index + 1}/{rounds} {side:>12}: fine-tuning "
                          f"{row['training_tokens_per_second']:.0f} tokens/s, generate "
                          f"{row['generation_tokens_per_second']:.1f} tokens/s", flush=True)

    def ratios(key):
        return [ours[key] / theirs[key] for ours, theirs in zip(rows["zoo"], rows["hugging face"])]

    decoders = {}
    for label, step_bytes in facts["decode_step_bytes"].items():
        speeds = [row["generation_tokens_per_second"][label] for row in rows["litert"]]
        decoders[label] = {
            "tokens_per_second": speeds, "bytes_per_token": step_bytes,
            "over_hugging_face_generate": [speed / peer["generation_tokens_per_second"]
                                           for speed, peer in zip(speeds, rows["hugging face"])],
            "fraction_of_bandwidth_bound": [speed * step_bytes / (row["memory_bandwidth"]["read_gb_per_second"] * 1e9)
                                            for speed, row in zip(speeds, rows["litert"])]}
    return {"shape": shape, "parameters": parameters, "batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH,
            "timed_steps": steps, "warmup_steps": warmup_steps, "new_tokens": new_tokens, "rounds": rows,
            "fine_tuning_zoo_over_hugging_face": ratios("training_tokens_per_second"),
            "generation_zoo_over_hugging_face": ratios("generation_tokens_per_second"),
            "decoders": decoders, "seconds": round(time.time() - started, 1), "machine": machine()}


def table(results):
    lines = [f"`{results['shape']}` ({results['parameters'] / 1e6:.0f}M, random weights), each side in its own "
             f"process, {len(results['rounds']['zoo'])} rounds taking turns; machine: "
             f"{results['machine'].get('cpu', '?')}, {results['machine'].get('cores', '?')} cores.", "",
             "| side | fine-tuning tokens/s (batch 4 x 128) | greedy generate tokens/s |", "|---|---|---|"]
    for side in SIDES[:2]:
        training = [row["training_tokens_per_second"] for row in results["rounds"][side]]
        generation = [row["generation_tokens_per_second"] for row in results["rounds"][side]]
        lines.append(f"| {side} | {median_range(training, 0)} | {median_range(generation)} |")
    lines += ["", f"zoo / Hugging Face: fine-tuning {median_range(results['fine_tuning_zoo_over_hugging_face'], 2, 'x')}, "
              f"generation {median_range(results['generation_zoo_over_hugging_face'], 2, 'x')}."]
    if results.get("decoders"):
        bandwidth = [row["memory_bandwidth"]["read_gb_per_second"] for row in results["rounds"]["litert"]]
        lines += ["", f"Decode on the app runtimes (greedy, 2 threads, cache 128; read bandwidth "
                      f"{median_range(bandwidth)} GB/s, measured in the same process):", "",
                  "| decoder | bytes per step | decode tokens/s | x Hugging Face generate | fraction of bandwidth bound |",
                  "|---|---|---|---|---|"]
        for label, row in results["decoders"].items():
            lines.append(f"| {label} | {row['bytes_per_token'] / 2**20:.0f} MiB | {median_range(row['tokens_per_second'])} "
                         f"| {median_range(row['over_hugging_face_generate'], 2, 'x')} "
                         f"| {median_range([100 * value for value in row['fraction_of_bandwidth_bound']], 0, '%')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpt2_processes", description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="gpt2_small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.scratch)
    results = run(args.shape, args.rounds, args.steps, new_tokens=args.new_tokens)
    out = args.out or RESULTS / f"gpt2_processes_{args.shape}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
