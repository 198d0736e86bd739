"""GPT-2 speed on this machine: fine-tuning tokens/s and generation tokens/s.

Random weights in a real shape (no download; speed does not depend on the
values) and GPT-2's published 50,257-token vocabulary, tinyshakespeare text.
Measured in one process so the ratios compare like with like on a noisy
machine (the trainers and the roofline taking turns step by step, the rest
one after another):

- a matmul roofline: best float32 GFLOP/s of XLA matmuls shaped like the
  model's FFN, timed in turn with the training steps, for model-FLOPs
  utilisation.
- fine-tuning: zoo's trainer (`zoo.causal_lm.build_trainer`: AdamW, clipping,
  XLA unless --no-xla) and Hugging Face `GPT2LMHeadModel` (PyTorch CPU, the
  same recipe) on the same packed windows, taking turns step by step;
  tokens/s from the median timed step after warm-up steps that include
  compilation.
- generation: new tokens/s, greedy, for keras-hub `generate` (its XLA-compiled
  cached loop, after a warm-up call), Hugging Face `generate` (KV cache) and
  zoo's LiteRT decoder (`zoo.runtime.Generator`, float32 and int8 weights,
  XNNPACK, 2 threads) and the same network as a LiteRT-LM bundle on Google's
  engine (`zoo.runtime.litertlm_runner`, CPU, 2 threads), prompt "ROMEO:" and
  the same number of new tokens; prefill tokens/s of both LiteRT decoders on
  a 52-token prompt (`PREFILL_PROMPT`).
- file sizes of the LiteRT files and bundles.

    python -m benchmarks.gpt2 [--shape gpt2_small] [--quick]

Writes benchmarks/results/<shape>.json.
"""

import argparse
import json
import pathlib
import platform
import statistics
import tempfile
import time

from benchmarks import hf_peer, limits
from benchmarks.timing import time_calls

RESULTS = pathlib.Path(__file__).parent / "results"


def machine():
    import os

    import keras
    import keras_hub
    import tensorflow as tf

    flags = []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = sorted(set(line.split(":")[1].split()) & {"avx", "avx2", "avx512f", "fma", "avx512_vnni",
                                                                  "avx_vnni", "amx_tile"})
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_flags": flags, "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "keras_hub": keras_hub.__version__}


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

    Timed in turn with the training steps (`fine_tuning`); the best call's
    GFLOP/s is the roofline for model-FLOPs utilisation.
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


ZOO_TRAINER = "zoo (keras-hub, XLA)"
HF_TRAINER = "hugging face (pytorch)"


def interleaved_step_seconds(step_functions, steps, warmup_steps):
    """Seconds of each timed step per trainer, the trainers taking turns step by step.

    On a shared machine whose speed drifts by 10-30% over minutes, taking
    turns exposes every trainer to the same drift; one after the other does not.
    """
    seconds = {name: [] for name in step_functions}
    for step in range(warmup_steps + steps):
        for name, run_step in step_functions.items():
            started = time.perf_counter()
            run_step(step)
            if step >= warmup_steps:
                seconds[name].append(time.perf_counter() - started)
    return seconds


def fine_tuning(model, windows, batch_size, steps, warmup_steps, jit_compile):
    """`(rows, roofline)`: tokens/s and model-FLOPs utilisation of zoo's trainer and (when installed)
    Hugging Face's on the same windows, and the matmul roofline, all timed in turn."""
    from zoo.causal_lm import build_trainer, windows_dataset

    sequence_length = windows.shape[1] - 1
    tokens = batch_size * sequence_length
    trainer = build_trainer(model, steps + warmup_steps, jit_compile=jit_compile)
    batches = list(windows_dataset(windows, batch_size))
    zoo_name = ZOO_TRAINER if jit_compile else "zoo (keras-hub)"
    step_functions = {zoo_name: lambda step: trainer.train_on_batch(*batches[step % len(batches)])}
    peer_threads = 2
    if hf_peer.available():
        step_functions[HF_TRAINER] = hf_peer.training_step(model.backbone, windows, batch_size, peer_threads)
    roofline_call, roofline_flops = matmul_roofline(model.backbone, tokens)
    step_functions["roofline"] = lambda step: roofline_call()
    seconds = interleaved_step_seconds(step_functions, steps, warmup_steps)
    roofline = {"shape": [tokens, model.backbone.hidden_dim, model.backbone.intermediate_dim],
                "gflops_per_second": roofline_flops / min(seconds.pop("roofline")) / 1e9}
    flops_per_token = training_flops_per_token(model.backbone, sequence_length)
    rows = {}
    for name, step_seconds in seconds.items():
        median = statistics.median(step_seconds)
        tokens_per_second = tokens / median
        rows[name] = {"batch_size": batch_size, "sequence_length": sequence_length, "timed_steps": steps,
                      "step_seconds": [round(value, 3) for value in step_seconds],
                      "median_step_seconds": median, "tokens_per_second": tokens_per_second,
                      "model_flops_utilisation": tokens_per_second * flops_per_token
                      / (roofline["gflops_per_second"] * 1e9)}
    rows[zoo_name]["jit_compile"] = jit_compile
    if HF_TRAINER in rows:
        rows[HF_TRAINER].update(threads=peer_threads, **hf_peer.versions())
    else:
        rows[HF_TRAINER] = {"skipped": hf_peer.INSTALL_HINT}
    return rows, roofline


def keras_generation(model, prompt, new_tokens, repeats):
    from zoo.causal_lm import generate
    from zoo.export.causal_lm_export import prompt_token_ids

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
    produced = len(generator.generate_token_ids(prompt_ids, max_length=max_length))
    seconds = time_calls(lambda: generator.generate_token_ids(prompt_ids, max_length=max_length), 0, repeats)
    return {"new_tokens": produced, "median_seconds": statistics.median(seconds),
            "tokens_per_second": produced / statistics.median(seconds), "threads": num_threads}


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
    """`(path, decode-step costs)`: a zoo Generator `.tflite` (+ sidecar) or a `.litertlm` bundle in `scratch`."""
    from zoo.export import causal_lm_export as lm_export
    from zoo.export import gpt2_decoder, litertlm_decoder
    from zoo.export.formats import litert
    from zoo.runtime import sidecar_path

    label = quantization or "float32"
    scratch = pathlib.Path(scratch)
    if kind == "litert":
        conversion = scratch / "conversion"
        if not conversion.exists():
            gpt2_decoder.write_conversion_saved_model(model.backbone, conversion, cache_length)
        path = scratch / f"model.{label}.tflite"
        flatbuffer = litert.convert(conversion, quantization, signature_keys=gpt2_decoder.SIGNATURES)
        path.write_bytes(flatbuffer)
        sidecar_path(path).write_text(json.dumps(lm_export.decoder_sidecar(
            model, model.name, label, path.name, litert.file_signatures(flatbuffer), cache_length)))
        return path, limits.tflite_costs(path, gpt2_decoder.DECODE_SIGNATURE)
    conversion = scratch / "litertlm_conversion"
    if not conversion.exists():
        litertlm_decoder.write_conversion_saved_model(model.backbone, conversion, cache_length)
    tokenizer = model.preprocessor.tokenizer
    flatbuffer = litert.convert(conversion, quantization, signature_keys=litertlm_decoder.signature_keys(cache_length))
    plain = scratch / f"litertlm.{label}.tflite"
    plain.write_bytes(flatbuffer)
    costs = limits.tflite_costs(plain, litertlm_decoder.DECODE_SIGNATURE)
    plain.unlink()
    path = scratch / f"model.{label}.litertlm"
    litertlm_decoder.build_bundle(flatbuffer, litertlm_decoder.huggingface_tokenizer_json(
        tokenizer.vocabulary, tokenizer.merges), path, start_token_id=tokenizer.end_token_id,
        stop_token_ids=[tokenizer.end_token_id], max_num_tokens=cache_length)
    return path, costs


def decode_bound(generation, step_bytes, bandwidth):
    """Per decoder: bytes one decode step reads (weights, gathered embedding rows, the KV cache), the
    tokens/s that read bandwidth allows, and the measured decode tokens/s as a fraction of it."""
    rows = {}
    for name, costs in step_bytes.items():
        step = costs["constant_bytes"] + costs["input_bytes"]
        bound = bandwidth["read_gb_per_second"] * 1e9 / step
        measured = generation.get(name, {}).get("tokens_per_second")
        rows[name] = {"bytes_per_token": step, "weight_bytes_per_token": costs["constant_bytes"],
                      "bound_tokens_per_second": bound,
                      "fraction_of_bound": measured / bound if measured else None}
    return rows


def run(shape="gpt2_small", quick=False, cache_length=128, new_tokens=64, jit_compile=True):
    import keras

    import zoo
    from zoo.data import load_corpus
    from zoo.export import causal_lm_export as lm_export

    keras.utils.set_random_seed(0)
    model = zoo.create_model(shape, dropout=0.0)
    corpus = load_corpus()
    steps, warmup = (2, 1) if quick else (8, 2)
    backbone = model.backbone
    results = {"shape": shape, "parameters": backbone.count_params(), "machine": machine()}
    # A batch-1 decode step reads every weight once: read bandwidth / bytes per step bounds tokens/s.
    results["memory_bandwidth"] = limits.memory_bandwidth(256 if quick else 1024)
    step_bytes = {}
    batch_size, sequence_length = 4, 128
    windows = training_windows(model, corpus, batch_size, sequence_length, steps + warmup)
    results["fine_tuning"], results["matmul_roofline"] = fine_tuning(model, windows, batch_size, steps, warmup,
                                                                      jit_compile)
    for name, row in results["fine_tuning"].items():
        if "tokens_per_second" in row:
            print(f"fine-tuning {name}: {row['tokens_per_second']:.0f} tokens/s, MFU "
                  f"{row['model_flops_utilisation']:.0%} of {results['matmul_roofline']['gflops_per_second']:.0f} "
                  "GFLOP/s", flush=True)
    results["training_flops_per_token"] = training_flops_per_token(backbone, sequence_length)

    repeats = 1 if quick else 3
    new_tokens = 8 if quick else new_tokens
    results["generation"] = {"keras_hub": keras_generation(model, "ROMEO:", new_tokens, repeats)}
    print(f"keras-hub generate: {results['generation']['keras_hub']['tokens_per_second']:.1f} tokens/s", flush=True)
    results["generation"]["hugging face"] = hf_peer.generation(
        backbone, lm_export.prompt_token_ids(model, "ROMEO:"), new_tokens, repeats)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        results["files"] = {}
        for kind, quantization in DECODERS:
            label = f"{kind} {quantization or 'float32'}"
            started = time.perf_counter()
            path, step_bytes[label] = write_decoder(model, kind, quantization, scratch, cache_length)
            results["files"][label] = {"bytes": path.stat().st_size,
                                       "convert_seconds": round(time.perf_counter() - started, 1)}
            if kind == "litert":
                row = litert_generation(path, "ROMEO:", new_tokens, repeats)
                row["prefill_tokens_per_second"] = litert_prefill(path, PREFILL_PROMPT, repeats)["tokens_per_second"]
            else:
                row = litert_lm_generation(path, "ROMEO:", new_tokens, repeats)
            results["generation"][label] = row
            print(f"{label}: {row['tokens_per_second']:.1f} tokens/s decode, "
                  f"{row['prefill_tokens_per_second']:.0f} prefill, {path.stat().st_size / 2**20:.0f} MiB", flush=True)
            path.unlink()
    results["cache_length"] = cache_length
    results["decode_bound"] = decode_bound(results["generation"], step_bytes, results["memory_bandwidth"])
    for name, row in results["decode_bound"].items():
        print(f"{name}: {row['bytes_per_token'] / 2**20:.0f} MiB per decode step, bound "
              f"{row['bound_tokens_per_second']:.0f} tokens/s at "
              f"{results['memory_bandwidth']['read_gb_per_second']:.1f} GB/s; measured "
              f"{row['fraction_of_bound'] or 0:.0%} of it", flush=True)
    base = results["generation"]["keras_hub"]["tokens_per_second"]
    results["ratios"] = {key: value["tokens_per_second"] / base for key, value in results["generation"].items()
                         if "tokens_per_second" in value}
    tuning = [row for row in results["fine_tuning"].values() if "tokens_per_second" in row]
    if len(tuning) == 2:
        zoo_row, peer_row = tuning
        results["ratios"]["fine-tuning zoo / hugging face"] = zoo_row["tokens_per_second"] / peer_row["tokens_per_second"]
        # Each zoo step against the peer step right after it: the least drift-sensitive figure.
        results["ratios"]["fine-tuning zoo / hugging face, median of step pairs"] = statistics.median(
            peer / ours for ours, peer in zip(zoo_row["step_seconds"], peer_row["step_seconds"]))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="gpt2_small")
    parser.add_argument("--quick", action="store_true", help="few steps and tokens (checks the harness)")
    parser.add_argument("--cache-length", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--out", help="results file (default benchmarks/results/<shape>.json)")
    args = parser.parse_args(argv)
    results = run(args.shape, args.quick, args.cache_length, args.new_tokens, not args.no_xla)
    out = pathlib.Path(args.out or RESULTS / f"{args.shape}{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["ratios"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
