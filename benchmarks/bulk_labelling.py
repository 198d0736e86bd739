"""Labelling a corpus in bulk: texts/s and max RSS per artifact and corpus size, against fastText.

    python -m benchmarks.bulk_labelling --version saved_models/lstm_classifier/1 \\
        [--keras saved_models/lstm_classifier/model.keras] [--sizes 10000 100000 1000000] [--long 20000] \\
        [--threads 2] [--beam]

Corpora come from rt-polarity (../shared/data): short texts are its reviews
in a shuffled order, repeated up to each size (JSONL with ids); long
documents join 30 consecutive reviews (about 650 words). Each (artifact,
corpus) is labelled by `zoo.labelling.label_corpus` in a fresh process, which
reports the seconds and its own max RSS; the peer, fastText with word bigrams
(`benchmarks.fasttext_peer`) trained on the same 90% split of rt-polarity,
labels the same corpus in its own process from the same JSONL, in batches of
10,000, writing the same rows. With --beam, the smallest short corpus also
goes through `python -m zoo.beam` (DirectRunner, `--threads` worker
processes) on the float32 LiteRT file: its overhead is its time over the
single process's.

Writes benchmarks/results/bulk_labelling.json (or --out) and prints a markdown table.
"""

import argparse
import json
import pathlib
import resource
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
    return {"seconds": time.perf_counter() - started, "rows": rows,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(version, *, keras_path=None, sizes=(10_000, 100_000), long_size=2_000, threads=2, batch_size=256,
            beam=False, data=None, scratch=None, only=None):
    """The results dict: one row per (artifact, corpus); `only`: the artifact names to time (default all)."""
    import zoo

    dataset = zoo.load_texts(data)
    train, validation = dataset.split(0.1, 1337)
    scratch = pathlib.Path(scratch or tempfile.mkdtemp(prefix="bulk-labelling-"))
    scratch.mkdir(parents=True, exist_ok=True)
    peer = fasttext_peer.train(train.texts, train.labels)
    peer.save_model(str(scratch / "fasttext.bin"))
    peer_accuracy = float(np.mean(fasttext_peer.predict(peer, validation.texts) == np.asarray(validation.labels)))
    corpora = {f"{size:,} short": write_corpus(scratch / f"short-{size}.jsonl", dataset.texts, size) for size in sizes}
    if long_size:
        corpora[f"{long_size:,} long"] = write_corpus(scratch / f"long-{long_size}.jsonl", dataset.texts, long_size,
                                                      long_documents=True)
    sides = {**artifacts(version, keras_path), "fasttext bigrams (peer)": str(scratch / "fasttext.bin")}
    sides = {side: model for side, model in sides.items() if only is None or side in only}
    rows = []
    for corpus, path in corpora.items():
        for side, model in sides.items():
            spec = {"kind": "fasttext" if side.startswith("fasttext") else "zoo", "model": model, "input": str(path),
                    "output": str(scratch / "labels.jsonl"), "threads": threads, "batch_size": batch_size}
            spec_path = scratch / "spec.json"
            spec_path.write_text(json.dumps(spec))
            (scratch / "labels.jsonl").unlink(missing_ok=True)
            measured = run_child("benchmarks.bulk_labelling", "--child", spec_path, timeout=7200)
            rows.append({"artifact": side, "corpus": corpus, "bytes": path.stat().st_size, **measured,
                         "texts_per_second": measured["rows"] / measured["seconds"]})
            print(rows[-1], flush=True)
    beam_row = _beam_overhead(sides, corpora, scratch, threads, rows) if beam else None
    return {"threads": threads, "batch_size": batch_size, "rows": rows, "beam": beam_row,
            "fasttext_validation_accuracy": peer_accuracy, "dataset": dataset.source, "versions": library_versions()}


def _beam_overhead(sides, corpora, scratch, threads, rows):
    corpus, path = next(iter(corpora.items()))
    model = sides.get("litert float32")
    single = next(row for row in rows if row["artifact"] == "litert float32" and row["corpus"] == corpus)
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-m", "zoo.beam", "--model", model, "--input", str(path),
                               "--output", str(scratch / "beam" / "labels"), "--direct_num_workers", str(threads)],
                              capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - started
    if finished.returncode:
        return {"error": finished.stderr.strip().splitlines()[-1:]}
    labelled = sum(len(shard.read_text().splitlines()) for shard in (scratch / "beam").glob("labels-*.jsonl"))
    return {"corpus": corpus, "seconds": seconds, "rows": labelled, "single_process_seconds": single["seconds"],
            "overhead": seconds / single["seconds"]}


def markdown_table(results):
    lines = [f"{results['threads']} threads, batches of {results['batch_size']}; fastText's validation accuracy "
             f"{results['fasttext_validation_accuracy']:.1%}.", "",
             "| artifact | corpus | texts/s | seconds | max RSS MB |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['artifact']} | {row['corpus']} | {row['texts_per_second']:,.0f} | "
                     f"{row['seconds']:.1f} | {row['max_rss_mb']:,.0f} |")
    beam = results.get("beam")
    if beam and "error" not in beam:
        lines += ["", f"Beam DirectRunner on {beam['corpus']}: {beam['seconds']:.1f} s against "
                      f"{beam['single_process_seconds']:.1f} s in one process ({beam['overhead']:.2f}x)."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--version", help="an exported version folder (saved_models/NAME/N)")
    parser.add_argument("--keras", help="the .keras file it was exported from (adds a Keras row)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
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
    results = measure(args.version, keras_path=args.keras, sizes=args.sizes, long_size=args.long,
                      threads=args.threads, batch_size=args.batch_size, beam=args.beam, data=args.data)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(markdown_table(results))


if __name__ == "__main__":
    main()
