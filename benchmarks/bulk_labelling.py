"""Labelling a corpus in bulk: texts/s and max RSS per artifact and corpus size, against fastText.

    python -m benchmarks.bulk_labelling --version saved_models/lstm_classifier/1 \\
        [--keras saved_models/lstm_classifier/model.keras] [--sizes 10000 100000] [--large 1000000] \\
        [--long 20000] [--threads 2] [--beam]

Corpora come from rt-polarity (../shared/data): short texts are its reviews
in a shuffled order, repeated up to each size (JSONL with ids); long
documents join 30 consecutive reviews (about 650 words). Each (artifact,
corpus) is labelled by `zoo.labelling.label_corpus` in a fresh process, which
reports the seconds and its own max RSS; the peer, fastText with word bigrams
(`benchmarks.fasttext_peer`) trained on the same 90% split of rt-polarity,
labels the same corpus in its own process from the same JSONL, in batches of
10,000, writing the same rows. The largest short corpus (--large) is
labelled by one file of each kind and the peer (`LARGE_CORPUS_SIDES`); the
fastest runtime files are also timed stage by stage in one thread (reading,
tokenizing, the model, writing). With --beam, the short corpora up to 100k
also go through `python -m zoo.beam` (DirectRunner, `--threads` worker
processes) and `zoo predict --input --threads` on the float32 ONNX file,
both timed from the command line: Beam's overhead is the ratio.

Writes benchmarks/results/bulk_labelling.json (or --out) and prints a markdown table.
"""

import argparse
import json
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import fasttext_peer, run_child
from zoo.versions import library_versions

RESULTS = pathlib.Path(__file__).parent / "results"
LONG_DOCUMENT_REVIEWS = 30


def artifacts(version, keras_path=None):
    """`{artifact name: path}`: what `zoo.labelling.open_predictor` opens, from an exported version folder."""
    version = pathlib.Path(version)
    found = {}
    if keras_path:
        found["keras"] = str(keras_path)
    if (version / "saved_model.pb").is_file():
        found["saved_model (text)"] = str(version)
    for name, relative in (("litert float32", "litert/model.tflite"), ("litert batch32", "litert/model.batch32.tflite"),
                           ("litert dynamic_int8", "litert/model.dynamic_int8.tflite"),
                           ("onnxruntime float32", "onnx/model.onnx"),
                           ("onnxruntime dynamic_int8", "onnx/model.dynamic_int8.onnx")):
        if (version / relative).is_file():
            found[name] = str(version / relative)
    return found


def write_corpus(path, texts, size, *, long_documents=False, seed=0):
    """`size` JSONL rows `{"id", "text"}` drawn in a shuffled order from `texts` (joined 30 at a time if long)."""
    order = np.random.default_rng(seed).permutation(len(texts))
    with open(path, "w", encoding="utf-8") as file:
        for row in range(size):
            if long_documents:
                start = (row * LONG_DOCUMENT_REVIEWS) % len(texts)
                text = " ".join(texts[order[(start + i) % len(texts)]] for i in range(LONG_DOCUMENT_REVIEWS))
            else:
                text = texts[order[row % len(texts)]]
            file.write(json.dumps({"id": row, "text": text}) + "\n")
    return path


def child(spec):
    """Label one corpus as `spec` says, in this process: `{"seconds", "rows", "max_rss_mb"}`."""
    if spec["kind"] == "breakdown":
        return breakdown(spec["model"], spec["input"], spec["batch_size"])
    started = time.perf_counter()
    if spec["kind"] == "fasttext":
        import fasttext

        model = fasttext.load_model(spec["model"])
        rows = 0
        with open(spec["input"], encoding="utf-8") as source, open(spec["output"], "w", encoding="utf-8") as out:
            while True:
                batch = [json.loads(line) for _, line in zip(range(10_000), source)]
                if not batch:
                    break
                labels, scores = model.predict([fasttext_peer.normalize(row["text"]) for row in batch], k=1)
                out.writelines(json.dumps({"id": row["id"], "label": label[0], "score": round(float(score[0]), 6)})
                               + "\n" for row, label, score in zip(batch, labels, scores))
                rows += len(batch)
    else:
        from zoo.labelling import label_corpus

        rows = label_corpus(spec["model"], spec["input"], spec["output"], threads=spec["threads"],
                            batch_size=spec["batch_size"]).rows
    return {"seconds": time.perf_counter() - started, "rows": rows, "max_rss_mb": peak_rss_mb()}


def peak_rss_mb():
    """This process's peak resident memory since it started its program, in MB.

    Linux's `getrusage(...).ru_maxrss` is no use in a child: fork copies the parent's high-water mark and
    exec keeps it, so a child of a 800 MB parent reports at least 800 MB. `VmHWM` belongs to the program
    exec loaded.
    """
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def breakdown(model, corpus, batch_size):
    """Where one thread's labelling time goes with a runtime file: seconds reading and parsing the input,
    tokenizing (the sidecar's pure-Python tokenizer), running the model, and deciding and formatting rows."""
    import zoo.runtime
    from zoo import labelling

    runner = zoo.runtime.load(model, num_threads=1)
    predictor = labelling.Predictor(runner.predict, runner.class_names, getattr(runner, "thresholds", None))
    seconds = dict.fromkeys(("read", "tokenize", "model", "write"), 0.0)
    clock = time.perf_counter()
    records = iter(labelling.read_records(corpus))
    rows = 0
    while True:
        batch = [text for _, (_, text) in zip(range(batch_size), records)]
        now = time.perf_counter()
        seconds["read"] += now - clock
        if not batch:
            break
        token_ids = runner.tokenizer.encode(batch)
        clock, now = now, time.perf_counter()
        seconds["tokenize"] += now - clock
        probabilities = runner.predict_token_ids(token_ids)
        clock, now = now, time.perf_counter()
        seconds["model"] += now - clock
        "".join(json.dumps(row) + "\n" for row in labelling.decisions(predictor, probabilities))
        clock = time.perf_counter()
        seconds["write"] += clock - now
        rows += len(batch)
    return {"rows": rows, "seconds": sum(seconds.values()), "stages": seconds}


# What the largest short corpus is labelled with: one file of each kind (the fastest of its variants
# at 100k texts here), and the peers; every artifact labels the smaller corpora.
LARGE_CORPUS_SIDES = ("keras", "saved_model (text)", "litert batch32", "onnxruntime float32",
                      "fasttext bigrams (peer)")
BREAKDOWN_SIDES = ("litert batch32", "onnxruntime float32")


def measure(version, *, keras_path=None, sizes=(10_000, 100_000), large=None, long_size=2_000, threads=2,
            batch_size=256, beam=False, data=None, scratch=None, only=None):
    """The results dict: one row per (artifact, corpus), the breakdown of one thread's time, the Beam row.

    `large`: a short corpus size labelled only by `LARGE_CORPUS_SIDES`; `only`: the artifact names to time.
    """
    import zoo

    dataset = zoo.load_texts(data)
    train, validation = dataset.split(0.1, 1337)
    scratch = pathlib.Path(scratch or tempfile.mkdtemp(prefix="bulk-labelling-"))
    scratch.mkdir(parents=True, exist_ok=True)
    peer = fasttext_peer.train(train.texts, train.labels)
    peer.save_model(str(scratch / "fasttext.bin"))
    peer_accuracy = float(np.mean(fasttext_peer.predict(peer, validation.texts) == np.asarray(validation.labels)))
    sides = {**artifacts(version, keras_path), "fasttext bigrams (peer)": str(scratch / "fasttext.bin")}
    sides = {side: model for side, model in sides.items() if only is None or side in only}
    plan = [(f"{size:,} short", write_corpus(scratch / f"short-{size}.jsonl", dataset.texts, size), list(sides))
            for size in sizes]
    if large:
        plan.append((f"{large:,} short", write_corpus(scratch / f"short-{large}.jsonl", dataset.texts, large),
                     [side for side in sides if side in LARGE_CORPUS_SIDES]))
    if long_size:
        plan.append((f"{long_size:,} long", write_corpus(scratch / f"long-{long_size}.jsonl", dataset.texts,
                                                         long_size, long_documents=True), list(sides)))
    rows = []
    for corpus, path, corpus_sides in plan:
        for side in corpus_sides:
            kind = "fasttext" if side.startswith("fasttext") else "zoo"
            measured = _run(scratch, kind, sides[side], path, threads, batch_size)
            rows.append({"artifact": side, "corpus": corpus, "bytes": path.stat().st_size, **measured,
                         "texts_per_second": measured["rows"] / measured["seconds"]})
            print(rows[-1], flush=True)
    # One thread, the 100k (or largest listed) short corpus: the stages of the fastest files.
    corpus, path, _ = max((entry for entry in plan if entry[0].endswith("short")
                           and int(entry[0].split()[0].replace(",", "")) <= 100_000),
                          key=lambda entry: entry[1].stat().st_size)
    stages = {side: _run(scratch, "breakdown", sides[side], path, 1, batch_size)
              for side in BREAKDOWN_SIDES if side in sides}
    beam_row = _beam_overhead(sides, {entry[0]: entry[1] for entry in plan}, scratch, threads) if beam else None
    report = json.loads((pathlib.Path(version) / "export_report.json").read_text())
    accuracy = {artifact: figures["accuracy"] for artifact, figures in report["parity"].items()}
    return {"threads": threads, "batch_size": batch_size, "rows": rows, "beam": beam_row,
            "breakdown": {"corpus": corpus, "sides": stages}, "model_accuracy": accuracy,
            "fasttext_validation_accuracy": peer_accuracy, "dataset": dataset.source, "versions": library_versions()}


def _run(scratch, kind, model, corpus, threads, batch_size):
    """One child process labelling `corpus` (see `child`)."""
    spec = {"kind": kind, "model": model, "input": str(corpus), "output": str(scratch / "labels.jsonl"),
            "threads": threads, "batch_size": batch_size}
    spec_path = scratch / "spec.json"
    spec_path.write_text(json.dumps(spec))
    (scratch / "labels.jsonl").unlink(missing_ok=True)
    return run_child("benchmarks.bulk_labelling", "--child", spec_path, timeout=7200)


BEAM_SIDES = ("onnxruntime float32", "litert float32")


def _beam_overhead(sides, corpora, scratch, threads):
    """Wall seconds of `python -m zoo.beam` (DirectRunner, `threads` worker processes) against `zoo predict
    --input --output --threads` on the same file and corpus, both from the command line, start-up included."""
    side = next((side for side in BEAM_SIDES if side in sides), None)
    if side is None:
        return None
    measured = []
    for corpus, path in corpora.items():
        if not corpus.endswith("short") or int(corpus.split()[0].replace(",", "")) > 100_000:
            continue
        commands = {
            "single_process": [sys.executable, "-m", "zoo", "predict", sides[side], "--input", str(path),
                               "--output", str(scratch / "single.jsonl"), "--threads", str(threads), "--overwrite"],
            "beam": [sys.executable, "-m", "zoo.beam", "--model", sides[side], "--input", str(path),
                     "--output", str(scratch / "beam" / "labels"), "--direct_num_workers", str(threads)],
        }
        row = {"artifact": side, "corpus": corpus}
        for arm, command in commands.items():
            shutil.rmtree(scratch / "beam", ignore_errors=True)
            started = time.perf_counter()
            finished = subprocess.run(command, capture_output=True, text=True, timeout=7200)
            row[f"{arm}_seconds"] = time.perf_counter() - started
            if finished.returncode:
                return {"error": f"{arm}: " + " ".join(finished.stderr.strip().splitlines()[-1:])}
        row["rows"] = sum(len(shard.read_text().splitlines()) for shard in (scratch / "beam").glob("labels-*.jsonl"))
        row["overhead"] = row["beam_seconds"] / row["single_process_seconds"]
        measured.append(row)
    return measured


# The export report's names of the artifacts (`export_report.json` "parity").
ACCURACY_KEYS = {"keras": "keras", "saved_model (text)": "saved_model", "onnxruntime float32": "onnx float32",
                 "onnxruntime dynamic_int8": "onnx dynamic_int8"}


def markdown_table(results):
    """Texts/s (and how many times slower than fastText on the same corpus) and max RSS per artifact and
    corpus; validation accuracy; one thread's time by stage; the Beam row."""
    corpora = list(dict.fromkeys(row["corpus"] for row in results["rows"]))
    by = {(row["artifact"], row["corpus"]): row for row in results["rows"]}
    peer = "fasttext bigrams (peer)"
    accuracy = {**results.get("model_accuracy", {}), peer: results["fasttext_validation_accuracy"]}
    lines = [f"{results['threads']} threads, batches of {results['batch_size']}. Each cell: texts/s "
             "(fastText's texts/s over this one's on the same corpus) / max RSS MB.", "",
             "| artifact | accuracy | " + " | ".join(corpora) + " |", "|---|---|" + "---|" * len(corpora)]
    for artifact in dict.fromkeys(row["artifact"] for row in results["rows"]):
        cells = []
        for corpus in corpora:
            row, reference = by.get((artifact, corpus)), by.get((peer, corpus))
            if row is None:
                cells.append("-")
                continue
            slower = f" ({reference['texts_per_second'] / row['texts_per_second']:.1f}x)" if reference else ""
            cells.append(f"{row['texts_per_second']:,.0f}{slower} / {row['max_rss_mb']:,.0f}")
        known = accuracy.get(ACCURACY_KEYS.get(artifact, artifact))
        lines.append(f"| {artifact} | {'-' if known is None else f'{known:.1%}'} | " + " | ".join(cells) + " |")
    breakdown = results.get("breakdown")
    if breakdown and breakdown["sides"]:
        lines += ["", f"One thread on {breakdown['corpus']}, share of the time by stage:", "",
                  "| artifact | texts/s | read | tokenize | model | decide+format |", "|---|---|---|---|---|---|"]
        for side, measured in breakdown["sides"].items():
            total = measured["seconds"]
            lines.append(f"| {side} | {measured['rows'] / total:,.0f} | " + " | ".join(
                f"{measured['stages'][stage] / total:.0%}" for stage in ("read", "tokenize", "model", "write")) + " |")
    beam = results.get("beam")
    if isinstance(beam, dict):
        lines += ["", f"Beam DirectRunner failed: {beam['error']}"]
    elif beam:
        lines += ["", f"`python -m zoo.beam` (DirectRunner, {results['threads']} worker processes) against "
                      f"`zoo predict --input --threads {results['threads']}`, wall seconds with start-up:", "",
                  "| artifact | corpus | zoo predict | zoo.beam | Beam / single |", "|---|---|---|---|---|"]
        lines += [f"| {row['artifact']} | {row['corpus']} | {row['single_process_seconds']:.1f} | "
                  f"{row['beam_seconds']:.1f} | {row['overhead']:.2f}x |" for row in beam]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--version", help="an exported version folder (saved_models/NAME/N)")
    parser.add_argument("--keras", help="the .keras file it was exported from (adds a Keras row)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000],
                        help="short corpora every artifact labels")
    parser.add_argument("--large", type=int, default=1_000_000,
                        help="a short corpus only one file of each kind and the peer label (0: none)")
    parser.add_argument("--long", type=int, default=20_000, help="long documents (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--beam", action="store_true", help="also time the Beam DirectRunner on the smallest corpus")
    parser.add_argument("--data", help="dataset path (default rt-polarity)")
    parser.add_argument("--out", default=str(RESULTS / "bulk_labelling.json"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(pathlib.Path(args.child).read_text()))))
        return
    if not args.version:
        parser.error("--version is required")
    results = measure(args.version, keras_path=args.keras, sizes=args.sizes, large=args.large, long_size=args.long,
                      threads=args.threads, batch_size=args.batch_size, beam=args.beam, data=args.data)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(markdown_table(results))


if __name__ == "__main__":
    main()
