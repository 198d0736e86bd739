"""Markdown tables and PNG plots from a `benchmarks.run` results file.

    python -m benchmarks.report benchmarks/results/speed.json [--readme benchmarks/README.md]

Regenerates, from the JSON alone: the tables between the results markers of
the markdown file (appended with markers if it has none), and beside the JSON
`<stem>_latency.png` (batch-1 median latency by runtime, grouped per model)
and `<stem>_accuracy_vs_size.png` (validation accuracy against file size, per artifact).
"""

import argparse
import json
import pathlib

from benchmarks.classifier_speed import ratios

START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"


def write_report(json_path, readme):
    """Tables into `readme` between the markers, plots beside `json_path`; returns the paths written."""
    json_path, readme = pathlib.Path(json_path), pathlib.Path(readme)
    results = json.loads(json_path.read_text())
    replace_between_markers(readme, markdown(results, plots_relative_to=readme.parent, json_path=json_path))
    return [readme, *plot(results, json_path.with_suffix(""))]


def replace_between_markers(path, text):
    block = f"{START_MARKER}\n{text.rstrip()}\n{END_MARKER}"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if START_MARKER in current and END_MARKER in current:
        before, rest = current.split(START_MARKER, 1)
        after = rest.split(END_MARKER, 1)[1]
        updated = before + block + after
    else:
        updated = (current.rstrip() + "\n\n" if current.strip() else "") + block + "\n"
    path.write_text(updated, encoding="utf-8")


def markdown(results, plots_relative_to=None, json_path=None):
    """The results as markdown: machine, one table per classifier, ratios, training, GPT-2."""
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"Mode **{results['mode']}**, {results.get('date', '')}, {results.get('seconds', 0):.0f} s in all. "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('usable_cores')} usable cores "
        f"({', '.join(machine.get('cpu_flags', []))}); TensorFlow {machine.get('tensorflow')}, "
        f"Keras {machine.get('keras')}, ai-edge-litert {machine.get('ai_edge_litert')}, "
        f"ONNX Runtime {machine.get('onnxruntime')}, tf2onnx {machine.get('tf2onnx')}, NumPy {machine.get('numpy')}.",
        "",
        f"Latency: median (p50) and p90 of {settings.get('rounds', 1)} rounds x {settings['timed_calls']} calls, "
        f"each round after {settings['warmup_calls']} warm-up calls, the runtimes' order rotated every round; every "
        "runtime but Keras and the SavedModel alone in a fresh process each round; "
        f"{settings['threads']} threads for LiteRT, MediaPipe, ONNX Runtime and ExecuTorch. LiteRT's phone files take "
        "one text per invoke, so their batch of 32 is 32 invokes; `litert batch32` takes 32 in one. Accuracy is on "
        "the validation split each export was checked against.",
    ]
    limits = results.get("limits")
    if limits:
        bandwidth, matmul = limits["memory_bandwidth"], limits["matmul"]
        read = bandwidth.get("read", "read")
        lines += ["", f"Machine limits, measured in this run (`benchmarks.limits`): read "
                      f"{bandwidth['read_gb_per_second']:.1f} GB/s ({read}) and copy "
                      f"{bandwidth['copy_gb_per_second']:.1f} GB/s ({bandwidth['threads']} threads), over "
                      f"{bandwidth['buffer_mib']} MiB; float32 matmul "
                      f"{matmul['gflops_per_second']:.0f} GFLOP/s (NumPy BLAS, {matmul['size']}^3)."]
    if json_path is not None and plots_relative_to is not None:
        stem = pathlib.Path(json_path).with_suffix("")
        for suffix, title in (("_latency.png", "batch-1 latency by runtime"),
                              ("_accuracy_vs_size.png", "accuracy vs file size")):
            target = pathlib.Path(str(stem) + suffix)
            lines += ["", f"![{title}]({_relative(target, plots_relative_to)})"]

    for name, entry in results["classifiers"].items():
        lines += ["", f"#### {name}", ""]
        if "error" in entry:
            lines.append(f"Failed: `{entry['error']}`")
            continue
        lines += [f"{entry['source']}; {entry['parameters']:,} parameters, sequence length "
                  f"{entry['sequence_length']} (the timed texts: {entry['timed_tokens_per_text']:.1f} tokens on "
                  f"average), {entry['validation_examples']} validation examples.", ""]
        lines += _runtime_table(entry)
        for what, reason in entry.get("failures", {}).items():
            lines.append(f"- {what}: {reason}")

    classifiers = {name: entry for name, entry in results["classifiers"].items() if "error" not in entry}
    if classifiers:
        ratios_by_model = {name: ratios(entry["inference"]) for name, entry in classifiers.items()}
        columns = [("litert_float32_vs_onnxruntime_batch_1", "LiteRT fp32 / ONNX Runtime, batch 1"),
                   ("litert_float32_vs_onnxruntime_native_rnn_batch_1", "LiteRT fp32 / ORT native RNN, batch 1"),
                   ("litert_batch32_vs_onnxruntime_batch_32", "LiteRT batch32 / ONNX Runtime, batch 32"),
                   ("litert_batch32_vs_onnxruntime_native_rnn_batch_32", "LiteRT batch32 / ORT native RNN, batch 32"),
                   ("litert_int8_vs_float32_batch_1", "LiteRT int8 / fp32, batch 1"),
                   ("litert_dynamic_int8_vs_float32_batch_1", "LiteRT dynamic int8 / fp32, batch 1"),
                   ("saved_model_text_vs_token_ids_batch_1", "SavedModel text / token ids, batch 1"),
                   ("saved_model_text_vs_token_ids_batch_32", "same, batch 32"),
                   ("keras_predict_vs_tf_function_batch_1", "Keras predict / tf.function, batch 1")]
        # The native-RNN peer columns only for runs that timed it as a separate peer (zoo's ONNX file is it now).
        columns = [(key, title) for key, title in columns
                   if "native_rnn" not in key or any(r.get(key) for r in ratios_by_model.values())]
        keys = tuple(key for key, _ in columns)
        lines += ["", "#### Ratios of median latency, one per round: median (min-max) (below 1: the first is faster)", "",
                  "| model | " + " | ".join(title for _, title in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for name, model_ratios in ratios_by_model.items():
            cells = [_ratio(model_ratios.get(key)) for key in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Against the app runtime on the same file and PyTorch's phone runtime on the same weights:", "",
                  "| model | MediaPipe (text) / zoo's LiteRT runner (ids), fp32, batch 1 "
                  "| LiteRT fp32 / ExecuTorch, batch 1 | LiteRT batch32 / ExecuTorch, batch 32 |",
                  "|---|---|---|---|"]
        for name, model_ratios in ratios_by_model.items():
            cells = [_ratio(model_ratios.get(key)) for key in (
                "mediapipe_vs_litert_float32_batch_1", "litert_float32_vs_executorch_batch_1",
                "litert_batch32_vs_executorch_batch_32")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")

        bounded = {name: entry["limits"] for name, entry in classifiers.items() if entry.get("limits")}
        if bounded:
            lines += ["", "#### Batch-1 latency against the machine's limits (LiteRT float32 phone file)", "",
                      "FLOPs and bytes are counted from the file's ops (`benchmarks.limits.tflite_costs`); the bound "
                      "is the larger of FLOPs / matmul peak and constant bytes / read bandwidth.", "",
                      "| model | MFLOP per text | weights read per text | p50 ms | achieved GFLOP/s | bound ms "
                      "| p50 / bound |", "|---|---|---|---|---|---|---|"]
            for name, row in bounded.items():
                bound = max(row["compute_bound_ms"], row["bandwidth_bound_ms"])
                lines.append(f"| {name} | {row['flops_per_example'] / 1e6:.2f} "
                             f"| {_size(row['constant_bytes_per_example'])} | {row['litert_float32_batch_1_p50_ms']:.3f} "
                             f"| {row['achieved_gflops_per_second']:.1f} | {bound:.4f} | {row['p50_over_bound']:.0f}x |")

        lines += ["", f"#### Training speed (`fit`, median of {settings['training_steps']} steps after "
                      f"{settings['training_warmup_steps']} warm-up steps)", "",
                  "| model | batch | median step ms | examples/s |", "|---|---|---|---|"]
        for name, entry in classifiers.items():
            training = entry["training"]
            if "error" in training:
                lines.append(f"| {name} | | failed: {training['error']} | |")
            else:
                lines.append(f"| {name} | {training['batch_size']} | {training['median_step_seconds'] * 1000:.1f} "
                             f"| {training['examples_per_second']:.0f} |")

    if "gpt2" in results:
        lines += ["", "#### GPT-2 (`benchmarks.gpt2`)", ""]
        lines += _gpt2_lines(dict(results["gpt2"], machine=machine))
    return "\n".join(lines) + "\n"


def _runtime_table(entry):
    lines = ["| runtime | file size | accuracy | batch 1 p50 ms | batch 1 p90 ms | batch 32 p50 ms "
             "| batch 32 examples/s |", "|---|---|---|---|---|---|---|"]
    by_runtime = {}
    for row in entry["inference"]:
        by_runtime.setdefault(row["runtime"], {})[row["batch_size"]] = row
    for runtime, rows in by_runtime.items():
        first = next(iter(rows.values()))
        artifact = entry["artifacts"].get(first["artifact"], {})
        one, many = rows.get(1, {}), rows.get(32, {})
        lines.append(
            f"| {runtime} | {_size(artifact.get('bytes'))} | {_number(artifact.get('accuracy'), '{:.1%}')} "
            f"| {_number(one.get('p50_ms'), '{:.2f}')} | {_number(one.get('p90_ms'), '{:.2f}')} "
            f"| {_number(many.get('p50_ms'), '{:.2f}')} | {_number(many.get('examples_per_second'), '{:,.0f}')} |"
        )
    return lines


def _gpt2_lines(gpt2):
    from benchmarks.gpt2 import table

    if "error" in gpt2:
        return [f"{gpt2.get('shape')}: failed: `{gpt2['error']}`"]
    return table(gpt2)


# Runtime families in the latency plot's order (the peers first), each with its own colour scale.
RUNTIME_FAMILIES = (("executorch", "Purples"), ("onnxruntime", "Blues"), ("keras", "Greys"),
                    ("saved_model", "Oranges"), ("litert", "Greens"), ("mediapipe", "Reds"))


def runtime_colours(runtimes):
    """`{runtime: RGBA}` in plot order: grouped by family (the first word), shades of the family's colour."""
    from matplotlib import colormaps

    ordered = {}
    known = [family for family, _ in RUNTIME_FAMILIES]
    others = dict.fromkeys(runtime.split(" ")[0] for runtime in runtimes if runtime.split(" ")[0] not in known)
    spare = ("YlOrBr", "PuRd", "BuGn", "RdPu", "YlGn")
    families = [*RUNTIME_FAMILIES, *((name, spare[index % len(spare)]) for index, name in enumerate(others))]
    for family, scale in families:
        members = [runtime for runtime in runtimes if runtime.split(" ")[0] == family]
        for index, runtime in enumerate(members):
            # From a mid to a dark shade: light ends of the scales are hard to see on white.
            ordered[runtime] = colormaps[scale](0.45 + 0.5 * index / max(1, len(members) - 1))
    return ordered


def plot(results, stem):
    """The two PNGs for `results`, named `<stem>_latency.png` and `<stem>_accuracy_vs_size.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = pathlib.Path(stem)
    classifiers = {name: entry for name, entry in results["classifiers"].items() if "error" not in entry}
    runtimes = list(dict.fromkeys(row["runtime"] for entry in classifiers.values() for row in entry["inference"]))
    colours = runtime_colours(runtimes)
    runtimes = list(colours)
    written = []

    figure, axes = plt.subplots(figsize=(max(6, 1.5 + 1.6 * len(classifiers) * max(1, len(runtimes)) / 4), 4.5))
    width = 0.8 / max(1, len(runtimes))
    for index, runtime in enumerate(runtimes):
        heights = []
        for entry in classifiers.values():
            row = next((row for row in entry["inference"] if row["runtime"] == runtime and row["batch_size"] == 1),
                       None)
            heights.append(row["p50_ms"] if row else 0.0)
        positions = [group + (index - (len(runtimes) - 1) / 2) * width for group in range(len(classifiers))]
        axes.bar(positions, heights, width, label=runtime, color=colours[runtime])
    axes.set_xticks(range(len(classifiers)), list(classifiers))
    axes.set_yscale("log")
    axes.set_ylabel("batch-1 median latency, ms (log)")
    axes.set_title(f"Latency by runtime ({results['mode']} mode, {results['settings']['threads']} threads)")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    written.append(pathlib.Path(f"{stem}_latency.png"))
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 4.5))
    markers = {"keras": "^", "saved_model": "D", "litert": "o", "onnxruntime": "s"}
    for entry_index, (name, entry) in enumerate(classifiers.items()):
        color = f"C{entry_index % 10}"
        # The SavedModel's two signatures are one file: plot it once.
        points = [(artifact.split(" (")[0], figures) for artifact, figures in entry["artifacts"].items()
                  if figures.get("bytes") and figures.get("accuracy") is not None]
        for index, (artifact, figures) in enumerate(dict(points).items()):
            family, _, quantization = artifact.partition(" ")
            x, y = figures["bytes"] / 1024, figures["accuracy"]
            axes.scatter([x], [y], color=color, marker=markers.get(family, "x"))
            axes.annotate(quantization or family, (x, y), fontsize=6, textcoords="offset points",
                          xytext=(4, 4 if index % 2 else -8))
    handles = [plt.Line2D([], [], color=f"C{index % 10}", marker="o", linestyle="", label=name)
               for index, name in enumerate(classifiers)]
    handles += [plt.Line2D([], [], color="gray", marker=marker, linestyle="", label=family)
                for family, marker in markers.items()]
    axes.set_xscale("log")
    axes.set_xlabel("file size, KiB (log)")
    axes.set_ylabel("validation accuracy")
    axes.set_title("Accuracy vs file size per artifact")
    axes.legend(handles=handles, fontsize=7)
    figure.tight_layout()
    written.append(pathlib.Path(f"{stem}_accuracy_vs_size.png"))
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)
    return written


def _size(size):
    if not size:
        return ""
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB"


def _ratio(values):
    """A ratio per round as "median (min-max)"."""
    from benchmarks.timing import median_range

    return "" if values is None else median_range(values, 2)


def _number(value, template):
    return "" if value is None else template.format(value)


def _relative(target, base):
    try:
        return pathlib.Path(target).resolve().relative_to(pathlib.Path(base).resolve()).as_posix()
    except ValueError:
        return pathlib.Path(target).resolve().as_posix()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a speed.json / speed_quick.json written by `python -m benchmarks`")
    parser.add_argument("--readme", default=str(pathlib.Path(__file__).parent / "README.md"),
                        help="markdown file to update between the results markers (default benchmarks/README.md)")
    args = parser.parse_args(argv)
    for path in write_report(args.results, args.readme):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
