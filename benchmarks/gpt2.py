"""GPT-2 speed: zoo against the peers users would pick instead, every side alone in its own process.

    python -m benchmarks.gpt2 [--shape gpt2_small] [--rounds 3] [--steps 8] [--new-tokens 64] [--quick]

Four sides, each run as a fresh process per round (TensorFlow is never imported into a PyTorch process,
nor PyTorch into TensorFlow's: two thread pools on the same two cores slowed PyTorch by 10-20% here), the
order rotated every round so the machine's drift over minutes falls on every side; every figure is quoted
as the median over rounds with its range:

- `zoo`: fine-tuning steps of `zoo.causal_lm.build_trainer` (AdamW, warmup + cosine, global-norm clipping
  at 1.0, XLA), then a matmul roofline (float32 XLA matmuls of the model's FFN shape, best call) for both
  trainers' model-FLOPs utilisation, then keras-hub `generate` (greedy, its XLA-compiled cached loop).
- `hugging face`: `GPT2LMHeadModel` (PyTorch CPU, 2 threads) fine-tuning with the same recipe (weight-decay
  groups, `clip_grad_norm_` at 1.0) on the same windows, and `generate` (KV cache).
- `litert`: zoo's `Generator` on its float32 and int8-weight decoder files and Google's LiteRT-LM engine
  on the same network's `.litertlm` bundles (XNNPACK, 2 threads), decode tokens/s and prefill tokens/s on
  a 52-token prompt, and the read bandwidth measured in the same process.
- `executorch`: PyTorch's phone runtime on the same weights, exported by transformers' ExecuTorch
  integration and lowered with XNNPACK, float32 and int8 weights (`benchmarks.executorch_gpt2`).

Same weights, same inputs: the parent builds the model once (random weights in the registered shape,
seed 0; speed does not depend on the values), saves them for the zoo side and as a transformers
checkpoint for the PyTorch sides, converts the LiteRT files and builds the ExecuTorch programs; children
only load and run. Both trainers get the same tinyshakespeare id windows (batch 4 x 128); every decoder
gets the ids of the prompt "ROMEO:" and makes `--new-tokens` greedy tokens, and its tokens are compared
with keras-hub's greedy tokens (the float32 decoders must agree; int8 agreement is reported).

The bandwidth bound: a batch-1 decode step reads every weight once plus the whole KV cache; the bytes of
one `decode` signature (counted from the LiteRT file, `benchmarks.limits.tflite_costs`) over the read
bandwidth bound tokens/s from above. The bandwidth is measured over a buffer of that size, read again and
again as decoding reads the same weights: where the step's bytes fit in the CPU's last-level cache (this
machine reports 480 MiB of L3, which holds the int8 step's 130 MiB) that is the cache's bandwidth, not
DRAM's. ExecuTorch's programs hold the same network at the same precision and are held against the same
bytes.

Writes `results/gpt2_<shape>.json` (`--quick`: gpt2_tiny-sized steps and tokens, one round: checks the harness).
`python -m benchmarks` runs this as its GPT-2 part.
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

import numpy as np

from benchmarks import executorch_gpt2, hf_peer, limits, run_child
from benchmarks.timing import median_range, time_calls
from zoo.versions import library_versions

RESULTS = pathlib.Path(__file__).parent / "results"
SIDES = ("zoo", "hugging face", "litert", "executorch")
BATCH_SIZE, SEQUENCE_LENGTH, PROMPT = 4, 128, "ROMEO:"
# Decode rows, in table order: the label, the side that measures it, and the precision its bound uses.
DECODE_ROWS = (("keras-hub generate", "zoo", None), ("hugging face generate", "hugging face", None),
               ("litert float32", "litert", "float32"), ("litert_lm float32", "litert", "float32"),
               ("executorch float32", "executorch", "float32"), ("litert dynamic_int8", "litert", "dynamic_int8"),
               ("litert_lm dynamic_int8", "litert", "dynamic_int8"),
               ("executorch dynamic_int8", "executorch", "dynamic_int8"))


def training_flops_per_token(backbone, sequence_length):
    """Model FLOPs of one training token (forward + backward = 3 x forward), PaLM-style.

    Forward per token: 2 x every matmul weight (the blocks and the tied
    output projection; embedding lookups are free) + attention scores and
    mixing, 2 x 2 x layers x context x width.
    """
    d, layers = backbone.hidden_dim, backbone.num_layers
    block = layers * (4 * d * d + 2 * d * backbone.intermediate_dim)  # qkv + out, two FFN matrices
    forward = 2 * block + 2 * d * backbone.vocabulary_size + 4 * layers * sequence_length * d
    return 3 * forward


def matmul_roofline(backbone, tokens):
    """`(call, flops)`: eight float32 XLA matmuls shaped like the model's FFN, and their FLOPs.

    Timed in zoo's process after its training steps; the best call's GFLOP/s
    is that round's roofline for both trainers' model-FLOPs utilisation.
    """
    import tensorflow as tf

    d, ffn = backbone.hidden_dim, backbone.intermediate_dim
    a = tf.random.normal([tokens, d])
    b = tf.random.normal([d, ffn])

    @tf.function(jit_compile=True)
    def matmuls(a, b):
        # Several in a row so one call is long enough to time.
        return [tf.matmul(a + float(i), b) for i in range(8)]

    return (lambda: [t.numpy() for t in matmuls(a, b)]), 8 * 2 * tokens * d * ffn


def training_windows(model, corpus, batch_size, sequence_length, steps):
    """`[steps * batch_size, sequence_length + 1]` id windows of tinyshakespeare, the same for zoo and the peer."""
    import numpy as np

    from zoo.causal_lm import pack_tokens

    text = "\n".join(corpus.documents)[: 400 * batch_size * sequence_length]
    windows = pack_tokens(np.asarray(model.preprocessor.tokenizer(text), np.int32), sequence_length)
    needed = steps * batch_size
    return np.concatenate([windows] * (needed // len(windows) + 1))[:needed]


def keras_generation(model, prompt, new_tokens, repeats):
    from zoo.causal_lm import generate
    from zoo.export.tasks.causal_lm import prompt_token_ids

    prompt_length = len(prompt_token_ids(model, prompt))
    max_length = prompt_length + new_tokens
    # One untimed call compiles keras-hub's generate loop.
    seconds = time_calls(lambda: generate(model, prompt, max_length=max_length), 1, repeats)
    # Random weights never emit <|endoftext|> early in practice; count what ran.
    return {"new_tokens": new_tokens, "median_seconds": statistics.median(seconds),
            "tokens_per_second": new_tokens / statistics.median(seconds)}


def litert_generation(path, prompt, new_tokens, repeats, num_threads=2):
    from zoo.runtime import Generator

    generator = Generator(path, num_threads=num_threads)
    prompt_ids = generator.prompt_token_ids(prompt)
    max_length = len(prompt_ids) + new_tokens
    # The warm-up call also says how many tokens each (deterministic) greedy run makes.
    token_ids = generator.generate_token_ids(prompt_ids, max_length=max_length)
    seconds = time_calls(lambda: generator.generate_token_ids(prompt_ids, max_length=max_length), 0, repeats)
    return {"new_tokens": len(token_ids), "median_seconds": statistics.median(seconds),
            "tokens_per_second": len(token_ids) / statistics.median(seconds), "threads": num_threads,
            "token_ids": token_ids}


# A prompt long enough to time prefill (tinyshakespeare's first lines, 52 GPT-2 tokens).
PREFILL_PROMPT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
                  "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.")


def litert_prefill(path, prompt, repeats, num_threads=2):
    """zoo's Generator: prefill tokens/s on a long prompt (chunks of its prefill signature)."""
    from zoo.runtime import Generator

    generator = Generator(path, num_threads=num_threads)
    prompt_ids = generator.prompt_token_ids(prompt)
    seconds = time_calls(lambda: generator.prefill(prompt_ids), 1, repeats)
    return {"prompt_tokens": len(prompt_ids), "median_seconds": statistics.median(seconds),
            "tokens_per_second": len(prompt_ids) / statistics.median(seconds)}


def litert_lm_generation(path, prompt, new_tokens, repeats, num_threads=2):
    """Google's LiteRT-LM engine on a `.litertlm` bundle, greedy: decode and prefill tokens/s.

    Decode is timed from the first streamed token to the last (the engine's
    own counters agree within 1-2%); prefill on `PREFILL_PROMPT`.
    """
    from zoo.runtime.litertlm_runner import LiteRTLMGenerator

    with LiteRTLMGenerator(path, num_threads=num_threads) as generator:
        generator.generate_text(prompt, new_tokens)  # warm-up
        decode, prefill = [], []
        for _ in range(repeats):
            generator.generate_text(prompt, new_tokens)
            decoded = generator.last_run["decode_tokens"]
            decode.append(decoded / generator.last_run["decode_seconds"])
            generator.generate_text(PREFILL_PROMPT, 1)
            prefill.append(generator.last_run["prefill_tokens"] / generator.last_run["prefill_seconds"])
        return {"new_tokens": decoded, "tokens_per_second": statistics.median(decode),
                "prefill_tokens": generator.last_run["prefill_tokens"],
                "prefill_tokens_per_second": statistics.median(prefill),
                "engine_seconds": round(generator.engine_seconds, 2), "threads": num_threads}


# zoo's Generator file and the LiteRT-LM bundle of the same network, float32 and int8 weights.
DECODERS = (("litert", None), ("litert", "dynamic_int8"), ("litert_lm", None), ("litert_lm", "dynamic_int8"))


def write_decoder(model, kind, quantization, scratch, cache_length):
    """`(path, decode-step costs)`: the file zoo's export writes, a zoo Generator `.tflite` (+ sidecar) or a
    `.litertlm` bundle, in `scratch`."""
    from zoo.export.formats import litert, litert_lm

    variant = quantization or "float32"
    scratch = pathlib.Path(scratch)
    options = {"cache_length": cache_length}
    if kind == "litert":
        path = scratch / f"model.{variant}.tflite"
        litert.write(model, path, variant, options=options, scratch=scratch)
        return path, limits.tflite_costs(path, "decode")
    # The bundle's own decoder, costed as a plain .tflite (the bundle wraps it).
    plain = scratch / f"litert_lm.{variant}.tflite"
    plain.write_bytes(litert_lm.decoder_flatbuffer(model, variant, cache_length, scratch))
    costs = limits.tflite_costs(plain, litert_lm.DECODE_SIGNATURE)
    plain.unlink()
    path = scratch / f"model.{variant}.litertlm"
    litert_lm.write(model, path, variant, options=options, scratch=scratch)
    return path, costs


# --- the sides: each runs in its own fresh process (`child`) and prints one JSON row ---

def _timed_steps(step, steps, warmup_steps):
    seconds = []
    for index in range(warmup_steps + steps):
        started = time.perf_counter()
        step(index)
        if index >= warmup_steps:
            seconds.append(time.perf_counter() - started)
    return seconds


def _zoo_side(scratch, facts, windows):
    import keras

    import zoo
    from zoo.causal_lm import build_trainer, windows_dataset

    model = zoo.create_model(facts["shape"], dropout=0.0)
    model.load_weights(scratch / "zoo.weights.h5")
    steps, warmup_steps = facts["steps"], facts["warmup_steps"]
    trainer = build_trainer(model, steps + warmup_steps, jit_compile=True)
    batches = list(windows_dataset(windows, BATCH_SIZE))
    seconds = _timed_steps(lambda index: trainer.train_on_batch(*batches[index % len(batches)]), steps, warmup_steps)
    roofline_call, roofline_flops = matmul_roofline(model.backbone, BATCH_SIZE * SEQUENCE_LENGTH)
    roofline = roofline_flops / min(time_calls(roofline_call, 1, 10)) / 1e9
    # generate on the trained weights would make other tokens than the other sides: reload the shared ones.
    model.load_weights(scratch / "zoo.weights.h5")
    generation = keras_generation(model, PROMPT, facts["new_tokens"], facts["repeats"])
    return {"step_seconds": seconds, "matmul_roofline_gflops_per_second": roofline,
            "decode": {"keras-hub generate": generation}, "versions": {"keras": keras.__version__}}


def _hugging_face_side(scratch, facts, windows):
    checkpoint = scratch / "checkpoint"
    seconds = _timed_steps(hf_peer.training_step(checkpoint, windows, BATCH_SIZE, threads=2), facts["steps"],
                           facts["warmup_steps"])
    generation = hf_peer.generation(checkpoint, facts["prompt_ids"], facts["new_tokens"], facts["repeats"], threads=2)
    return {"step_seconds": seconds, "decode": {"hugging face generate": generation}, "versions": library_versions("torch", "transformers")}


def _litert_side(scratch, facts, windows):
    import importlib.metadata

    decode = {}
    for label, name in facts["decoders"].items():
        path = scratch / "decoders" / name
        if label.startswith("litert_lm "):
            decode[label] = litert_lm_generation(path, PROMPT, facts["new_tokens"], facts["repeats"])
        else:
            decode[label] = litert_generation(path, PROMPT, facts["new_tokens"], facts["repeats"])
            decode[label]["prefill_tokens_per_second"] = litert_prefill(path, PREFILL_PROMPT,
                                                                        facts["repeats"])["tokens_per_second"]
    versions = {package: importlib.metadata.version(package) for package in ("ai-edge-litert", "litert-lm-api")}
    # Read bandwidth over a buffer of each precision's step size: decoding rereads the same bytes every token
    # (15 passes: over 130 MiB the best pass still rose after 5, 31-40 GB/s over 7 passes, as the cache warmed).
    bandwidth = {label.split(" ", 1)[1]: limits.memory_bandwidth(max(1, round(step_bytes / 2**20)), repeats=15)
                 for label, step_bytes in facts["decode_step_bytes"].items() if label.startswith("litert ")}
    return {"decode": decode, "memory_bandwidth": bandwidth, "versions": versions}


def _executorch_side(scratch, facts, windows):
    import importlib.metadata

    decode = {f"executorch {quantization}": executorch_gpt2.generation(
        program["path"], facts["prompt_ids"], facts["new_tokens"], facts["repeats"])
        for quantization, program in facts["executorch_programs"].items()}
    return {"decode": decode, "versions": {package: importlib.metadata.version(package)
                                           for package in ("torch", "executorch", "transformers")}}


SIDE_RUNS = {"zoo": _zoo_side, "hugging face": _hugging_face_side, "litert": _litert_side,
             "executorch": _executorch_side}


def child(side, scratch):
    """One side's run in this (fresh) process; prints its JSON row."""
    scratch = pathlib.Path(scratch)
    facts = json.loads((scratch / "facts.json").read_text())
    print(json.dumps(SIDE_RUNS[side](scratch, facts, np.load(scratch / "windows.npy"))))


# --- the parent: one model, its files for every side, the rounds, the summary ---

def _prepare(shape, scratch, steps, warmup_steps, new_tokens, repeats, cache_length):
    """Build the model once and write what every side loads; returns `(facts, backbone, skipped)`."""
    import keras

    import zoo
    from zoo.data import load_corpus
    from zoo.export.tasks.causal_lm import keras_greedy_token_ids, prompt_token_ids

    keras.utils.set_random_seed(0)
    model = zoo.create_model(shape, dropout=0.0)
    windows = training_windows(model, load_corpus(), BATCH_SIZE, SEQUENCE_LENGTH, steps + warmup_steps)
    np.save(scratch / "windows.npy", windows)
    model.save_weights(scratch / "zoo.weights.h5")
    prompt_ids = [int(i) for i in prompt_token_ids(model, PROMPT)]
    facts = {"shape": shape, "steps": steps, "warmup_steps": warmup_steps, "new_tokens": new_tokens,
             "repeats": repeats, "cache_length": cache_length, "prompt_ids": prompt_ids,
             # keras-hub's greedy tokens on these weights: what every decoder's tokens are compared with.
             "reference_token_ids": keras_greedy_token_ids(model, [PROMPT], len(prompt_ids) + new_tokens)[0],
             "decoders": {}, "decode_step_bytes": {}, "files": {}}
    (scratch / "decoders").mkdir()
    for kind, quantization in DECODERS:
        label = f"{kind} {quantization or 'float32'}"
        started = time.perf_counter()
        path, costs = write_decoder(model, kind, quantization, scratch / "decoders", cache_length)
        facts["decoders"][label] = path.name
        facts["decode_step_bytes"][label] = costs["constant_bytes"] + costs["input_bytes"]
        facts["files"][label] = {"bytes": path.stat().st_size, "convert_seconds": round(time.perf_counter() - started, 1)}
        print(f"wrote {label}: {path.stat().st_size / 2**20:.0f} MiB", flush=True)
    skipped = {}
    if hf_peer.available() and executorch_gpt2.available():
        executorch_gpt2.save_checkpoint(model, scratch / "checkpoint")
        facts["executorch_programs"] = run_child(executorch_gpt2.__name__, "build", scratch / "checkpoint",
                                                 scratch / "executorch", cache_length)
        for quantization, program in facts["executorch_programs"].items():
            facts["files"][f"executorch {quantization}"] = {"bytes": program["bytes"],
                                                            "convert_seconds": program["seconds"]}
    elif hf_peer.available():
        executorch_gpt2.save_checkpoint(model, scratch / "checkpoint")
        skipped["executorch"] = "executorch not installed (pip install '.[peers]')"
    else:
        skipped["hugging face"] = skipped["executorch"] = hf_peer.INSTALL_HINT
    (scratch / "facts.json").write_text(json.dumps(facts))
    return facts, model.backbone, skipped


def run(shape="gpt2_small", rounds=3, steps=8, warmup_steps=2, new_tokens=64, repeats=3, cache_length=128):
    """The results dict: every round of every side, and `summary` (per-round ratios and fractions)."""
    from benchmarks.limits import machine as machine_facts

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-gpt2-") as scratch:
        scratch = pathlib.Path(scratch)
        facts, backbone, skipped = _prepare(shape, scratch, steps, warmup_steps, new_tokens, repeats, cache_length)
        sides = [side for side in SIDES if side not in skipped]
        rows = {side: [] for side in sides}
        for round_index in range(rounds):
            # Every side takes every place in the order once in len(sides) rounds.
            for side in sides[round_index % len(sides):] + sides[:round_index % len(sides)]:
                rows[side].append(run_child("benchmarks.gpt2", "--child", side, "--scratch", scratch,
                                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))
                decode = ", ".join(f"{label} {row['tokens_per_second']:.1f}"
                                   for label, row in rows[side][-1]["decode"].items())
                training = rows[side][-1].get("step_seconds")
                trained = (f"fine-tuning {BATCH_SIZE * SEQUENCE_LENGTH / statistics.median(training):.0f} tokens/s, "
                           if training else "")
                print(f"round {round_index + 1}/{rounds} {side:>12}: {trained}decode {decode} tokens/s", flush=True)
    results = {"shape": shape, "parameters": backbone.count_params(), "batch_size": BATCH_SIZE,
               "sequence_length": SEQUENCE_LENGTH, "timed_steps": steps, "warmup_steps": warmup_steps,
               "new_tokens": new_tokens, "cache_length": cache_length, "prompt": PROMPT,
               "reference_token_ids": facts["reference_token_ids"], "files": facts["files"],
               "decode_step_bytes": facts["decode_step_bytes"], "skipped": skipped, "rounds": rows}
    results["summary"] = summary(results, training_flops_per_token(backbone, SEQUENCE_LENGTH))
    results.update(seconds=round(time.time() - started, 1), machine=machine_facts())
    return results


def _agreement(tokens, reference):
    """How many of the first tokens equal keras-hub's greedy tokens, before the first difference."""
    count = 0
    for ours, theirs in zip(tokens, reference):
        if ours != theirs:
            break
        count += 1
    return count


def summary(results, flops_per_token):
    """Per-round figures (lists, one value a round) from `results["rounds"]`: tokens/s, ratios, fractions."""
    rounds, tokens = results["rounds"], BATCH_SIZE * SEQUENCE_LENGTH
    out = {"fine_tuning_tokens_per_second": {}, "model_flops_utilisation": {}, "decode": {}}
    rooflines = [row["matmul_roofline_gflops_per_second"] for row in rounds.get("zoo", [])]
    for side in ("zoo", "hugging face"):
        if side in rounds:
            speeds = [tokens / statistics.median(row["step_seconds"]) for row in rounds[side]]
            out["fine_tuning_tokens_per_second"][side] = speeds
            out["model_flops_utilisation"][side] = [speed * flops_per_token / (roofline * 1e9)
                                                    for speed, roofline in zip(speeds, rooflines)]
    if len(out["fine_tuning_tokens_per_second"]) == 2:
        ours, theirs = out["fine_tuning_tokens_per_second"].values()
        out["fine_tuning_zoo_over_hugging_face"] = [a / b for a, b in zip(ours, theirs)]
    # Per precision, one value a round: the read bandwidth over a buffer of that precision's step size.
    out["read_gb_per_second"] = {precision: [row["memory_bandwidth"][precision]["read_gb_per_second"]
                                             for row in rounds["litert"]]
                                 for precision in (rounds["litert"][0]["memory_bandwidth"] if "litert" in rounds else ())}
    reference = results["reference_token_ids"]
    for label, side, precision in DECODE_ROWS:
        if side not in rounds or label not in rounds[side][0]["decode"]:
            continue
        figures = [row["decode"][label] for row in rounds[side]]
        row = {"tokens_per_second": [figure["tokens_per_second"] for figure in figures]}
        if "prefill_tokens_per_second" in figures[0]:
            row["prefill_tokens_per_second"] = [figure["prefill_tokens_per_second"] for figure in figures]
        if "token_ids" in figures[-1]:
            row["tokens_equal_to_keras_hub"] = _agreement(figures[-1]["token_ids"], reference)
        step_bytes = results["decode_step_bytes"].get(f"litert {precision}") if precision else None
        bandwidths = out["read_gb_per_second"].get(precision)
        if step_bytes and bandwidths:
            row["bytes_per_token"] = step_bytes
            row["fraction_of_bound"] = [speed * step_bytes / (bandwidth * 1e9)
                                        for speed, bandwidth in zip(row["tokens_per_second"], bandwidths)]
        out["decode"][label] = row
    for peer in ("keras-hub generate", "hugging face generate"):
        if peer in out["decode"]:
            for row in out["decode"].values():
                row[f"over {peer}"] = [a / b for a, b in zip(row["tokens_per_second"],
                                                            out["decode"][peer]["tokens_per_second"])]
    return out


def table(results):
    """Markdown lines: fine-tuning and decode, each figure the median over rounds (min-max)."""
    summary, machine = results["summary"], results["machine"]
    rounds = len(next(iter(results["rounds"].values())))
    lines = [f"`{results['shape']}` ({results['parameters'] / 1e6:.0f}M parameters, the same random weights on every "
             f"side), each side alone in its own process, {rounds} round{'s' if rounds > 1 else ''} taking turns; "
             f"median (min-max) over rounds. Machine: {machine.get('cpu', '?')}, {machine.get('usable_cores', '?')} "
             "usable cores."]
    if results.get("skipped"):
        lines += [""] + [f"- {side}: not measured: {reason}" for side, reason in results["skipped"].items()]
    if summary["fine_tuning_tokens_per_second"]:
        lines += ["", f"| fine-tuning, batch {results['batch_size']} x {results['sequence_length']} | tokens/s "
                      "| model-FLOPs utilisation |", "|---|---|---|"]
        names = {"zoo": "zoo (keras-hub, XLA)", "hugging face": "Hugging Face (PyTorch)"}
        for side, speeds in summary["fine_tuning_tokens_per_second"].items():
            utilisation = [100 * value for value in summary["model_flops_utilisation"][side]]
            lines.append(f"| {names[side]} | {median_range(speeds)} | {median_range(utilisation, 0, '%')} |")
        roofline = [row["matmul_roofline_gflops_per_second"] for row in results["rounds"]["zoo"]]
        lines += ["", f"Matmul roofline (float32 XLA, the FFN's shape): {median_range(roofline, 0)} GFLOP/s."]
        if "fine_tuning_zoo_over_hugging_face" in summary:
            lines += [f"zoo / Hugging Face fine-tuning: "
                      f"{median_range(summary['fine_tuning_zoo_over_hugging_face'], 2, 'x')}."]
    if summary["decode"]:
        bandwidth = "; ".join(
            f"{precision} {median_range(values)} GB/s over {results['decode_step_bytes'][f'litert {precision}'] / 2**20:.0f} MiB"
            for precision, values in summary["read_gb_per_second"].items())
        lines += ["", f"Greedy decode, prompt \"{results['prompt']}\", {results['new_tokens']} new tokens, cache "
                      f"{results['cache_length']}, 2 threads"
                  + (f"; read bandwidth over a buffer the size of one step's reads, measured in the LiteRT side's "
                     f"process: {bandwidth}" if bandwidth else "") + ":", "",
                  "| decoder | decode tokens/s | x keras-hub | x Hugging Face | prefill tokens/s | file size "
                  "| bytes per step | fraction of bandwidth bound | tokens equal to keras-hub's |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, row in summary["decode"].items():
            def cell(key, digits=1, unit="", scale=1.0):
                values = row.get(key)
                return median_range([scale * value for value in values], digits, unit) if values else ""

            size = results["files"].get(label, {}).get("bytes")
            step_bytes = row.get("bytes_per_token")
            agreement = row.get("tokens_equal_to_keras_hub")
            cells = [label, cell("tokens_per_second"), cell("over keras-hub generate", 2, "x"),
                     cell("over hugging face generate", 2, "x"), cell("prefill_tokens_per_second", 0),
                     f"{size / 2**20:.0f} MiB" if size else "", f"{step_bytes / 2**20:.0f} MiB" if step_bytes else "",
                     cell("fraction_of_bound", 0, "%", 100.0),
                     "" if agreement is None else f"{agreement}/{results['new_tokens']}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpt2", description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="gpt2_small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="2 steps, 8 tokens, one round: checks the harness")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.scratch)
    settings = dict(rounds=1, steps=2, warmup_steps=1, new_tokens=8, repeats=1) if args.quick else dict(
        rounds=args.rounds, steps=args.steps, new_tokens=args.new_tokens)
    results = run(args.shape, **settings)
    out = args.out or RESULTS / f"gpt2_{args.shape}{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("\n".join(table(results)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
