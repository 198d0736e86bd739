"""The speed benchmark harness in --quick mode: well-formed results, tables and plots (no timing checks)."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

RUNTIMES = [
    "keras predict (text)",
    "keras tf.function (token_ids)",
    "saved_model serving_default (text)",
    "saved_model predict_token_ids",
    "litert float32",
    "litert float16",
    "litert dynamic_int8",
    "litert int8",
    "litert batch32",
    "mediapipe TextClassifier float32 (text)",
    "onnxruntime float32",
    "fasttext bigrams (text)",
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # Through `zoo bench`, from outside the checkout; GPT-2 is left out to keep the test short.
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "bench", "--quick", "--no-gpt2", "--out", str(out)],
        capture_output=True, text=True, cwd=out, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_results_json(quick_run):
    results = json.loads((quick_run / "speed_quick.json").read_text())
    assert results["mode"] == "quick"
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["usable_cores"] >= 1
    assert isinstance(machine["cpu_flags"], list)
    for package in ("tensorflow", "keras", "numpy", "ai_edge_litert", "onnxruntime"):
        assert machine[package], package

    entry = results["classifiers"]["lstm_classifier"]
    assert "error" not in entry, entry
    rows = {(row["runtime"], row["batch_size"]): row for row in entry["inference"]}
    for runtime in RUNTIMES:
        for batch_size in (1, 32):
            row = rows[runtime, batch_size]
            assert 0 < row["p50_ms"] <= row["p90_ms"], row
            assert row["examples_per_second"] > 0
            # Two rounds in quick mode, every runtime timed in each.
            assert len(row["round_p50_ms"]) == 2 and row["calls"] == 2 * results["settings"]["timed_calls"], row
    assert rows["litert float32", 32]["invokes_per_batch"] == 32
    assert rows["litert batch32", 32]["invokes_per_batch"] == rows["litert batch32", 1]["invokes_per_batch"] == 1
    assert len(entry["ratios"]["litert_batch32_vs_onnxruntime_batch_32"]) == 2 and min(entry["ratios"]["litert_batch32_vs_onnxruntime_batch_32"]) > 0

    keras_accuracy = entry["artifacts"]["keras"]["accuracy"]
    # float32 files decide as Keras does (the export checked them to 1e-4); int8 may flip a near tie or two.
    for artifact in ("keras", "saved_model (text)", "litert float32", "onnxruntime float32"):
        figures = entry["artifacts"][artifact]
        assert figures["bytes"] > 0 and figures["accuracy"] == keras_accuracy, (artifact, figures)
    assert abs(entry["artifacts"]["litert int8"]["accuracy"] - keras_accuracy) <= 0.1
    assert len(entry["ratios"]["litert_float32_vs_onnxruntime_batch_1"]) == 2 and min(entry["ratios"]["litert_float32_vs_onnxruntime_batch_1"]) > 0
    assert len(entry["ratios"]["saved_model_text_vs_token_ids_batch_1"]) == 2 and min(entry["ratios"]["saved_model_text_vs_token_ids_batch_1"]) > 0
    assert entry["training"]["examples_per_second"] > 0
    assert entry["onnx"]["converter"].startswith("tf2onnx")
    # fastText, trained on the same split, is timed from raw text beside zoo's files.
    assert entry["artifacts"]["fasttext bigrams (text)"]["bytes"] > 0
    assert len(entry["ratios"]["litert_float32_vs_fasttext_batch_1"]) == 2
    # The benchmark times the file the export wrote: ONNX's own LSTM op, not tf2onnx's Loop.
    assert entry["onnx"]["native_recurrent_ops"] == ["LSTM"]

    limits = results["limits"]
    assert limits["memory_bandwidth"]["read_gb_per_second"] > 0 and limits["matmul"]["gflops_per_second"] > 0
    bound = entry["limits"]
    assert bound["flops_per_example"] > 0 and bound["constant_bytes_per_example"] > 0
    assert bound["p50_over_bound"] == pytest.approx(
        bound["litert_float32_batch_1_p50_ms"] / max(bound["compute_bound_ms"], bound["bandwidth_bound_ms"]))


def test_markdown_and_plots(quick_run):
    markdown = (quick_run / "speed_quick.md").read_text()
    assert markdown.count("<!-- results:start -->") == 1 and markdown.count("<!-- results:end -->") == 1
    assert "| litert int8 |" in markdown and "| onnxruntime float32 |" in markdown
    assert "| fasttext bigrams (text) |" in markdown and "LiteRT fp32 (ids) / fastText (text), batch 1" in markdown
    assert "Machine limits, measured in this run" in markdown and "| p50 / bound |" in markdown
    for name in ("speed_quick_latency.png", "speed_quick_accuracy_vs_size.png"):
        assert (quick_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_regenerates_between_markers(quick_run, tmp_path):
    from benchmarks import report

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nMore text.\n")
    results = tmp_path / "speed_quick.json"
    results.write_text((quick_run / "speed_quick.json").read_text())
    report.main([str(results), "--readme", str(readme)])
    report.main([str(results), "--readme", str(readme)])  # idempotent
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n") and text.endswith("More text.\n")
    assert "old" not in text and text.count("#### lstm_classifier") == 1
    assert (tmp_path / "speed_quick_latency.png").is_file()


def test_training_flops_per_token_counts_gpt2_small():
    from types import SimpleNamespace

    from benchmarks import gpt2

    small = SimpleNamespace(hidden_dim=768, num_layers=12, intermediate_dim=3072, vocabulary_size=50257)
    # 85M block weights + the tied 38.6M output projection, x2 forward, x3 with
    # the backward pass, plus attention over 128 positions.
    blocks = 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    assert blocks == 84_934_656
    expected = 3 * (2 * blocks + 2 * 768 * 50257 + 4 * 12 * 128 * 768)
    assert gpt2.training_flops_per_token(small, 128) == expected


def _gpt2_results(skipped=None):
    """Two rounds of the four GPT-2 sides, as `benchmarks.gpt2.run` records them (made-up figures)."""
    step = 4 * 128  # tokens a training step
    rounds = {
        "zoo": [{"step_seconds": [step / 240.0] * 3, "matmul_roofline_gflops_per_second": 200.0,
                 "decode": {"keras-hub generate": {"tokens_per_second": 20.0}}},
                {"step_seconds": [step / 260.0] * 3, "matmul_roofline_gflops_per_second": 100.0,
                 "decode": {"keras-hub generate": {"tokens_per_second": 25.0}}}],
        "hugging face": [{"step_seconds": [step / 160.0] * 3,
                          "decode": {"hugging face generate": {"tokens_per_second": 30.0, "token_ids": [1, 2, 3]}}},
                         {"step_seconds": [step / 200.0] * 3,
                          "decode": {"hugging face generate": {"tokens_per_second": 30.0, "token_ids": [1, 2, 3]}}}],
        "litert": [{"memory_bandwidth": {"dynamic_int8": {"read_gb_per_second": bandwidth}},
                    "decode": {"litert dynamic_int8": {"tokens_per_second": speed, "prefill_tokens_per_second": 900.0,
                                                       "token_ids": [1, 2, 9]}}}
                   for bandwidth, speed in ((30.0, 150.0), (40.0, 170.0))],
    }
    results = {"shape": "gpt2_small", "parameters": 124_000_000, "batch_size": 4, "sequence_length": 128,
               "new_tokens": 3, "cache_length": 128, "prompt": "ROMEO:", "reference_token_ids": [1, 2, 3],
               "files": {"litert dynamic_int8": {"bytes": 160 * 2**20}},
               "decode_step_bytes": {"litert dynamic_int8": 2**27}, "skipped": skipped or {}, "rounds": rounds,
               "machine": {"cpu": "Test CPU", "usable_cores": 2}}
    from benchmarks import gpt2

    results["summary"] = gpt2.summary(results, flops_per_token=1e9)
    return results


def test_gpt2_summary_pairs_each_round_and_bounds_decode_by_the_bytes_a_step_reads():
    import pytest

    summary = _gpt2_results()["summary"]
    assert summary["fine_tuning_zoo_over_hugging_face"] == pytest.approx([1.5, 1.3])
    # Utilisation against the roofline measured in the same round: 240 tokens/s x 1 GFLOP / 200 GFLOP/s.
    assert summary["model_flops_utilisation"]["zoo"] == pytest.approx([1.2, 2.6])
    decode = summary["decode"]["litert dynamic_int8"]
    assert decode["over keras-hub generate"] == pytest.approx([7.5, 6.8])
    assert decode["over hugging face generate"] == pytest.approx([5.0, 170 / 30])
    # 2**27 bytes a step at 30 GB/s bound decode at 223.5 tokens/s; 150 is 67% of it.
    assert decode["fraction_of_bound"] == pytest.approx([150 * 2**27 / 30e9, 170 * 2**27 / 40e9])
    assert decode["tokens_equal_to_keras_hub"] == 2 and summary["decode"]["hugging face generate"][
        "tokens_equal_to_keras_hub"] == 3


def test_gpt2_table_quotes_every_figure_as_median_and_range_and_says_what_was_not_measured():
    from benchmarks import gpt2

    text = "\n".join(gpt2.table(_gpt2_results(skipped={"executorch": "executorch not installed"})))
    assert "2 rounds taking turns" in text and "Test CPU, 2 usable cores" in text
    assert "- executorch: not measured: executorch not installed" in text
    assert "| zoo (keras-hub, XLA) | 250.0 (240.0-260.0) | 190% (120-260) |" in text
    assert "| Hugging Face (PyTorch) | 180.0 (160.0-200.0) |" in text
    assert "zoo / Hugging Face fine-tuning: 1.40x (1.30-1.50)." in text
    assert "dynamic_int8 35.0 (30.0-40.0) GB/s over 128 MiB" in text
    assert ("| litert dynamic_int8 | 160.0 (150.0-170.0) | 7.15x (6.80-7.50) | 5.33x (5.00-5.67) | 900 (900-900) "
            "| 160 MiB | 128 MiB | 62% (57-67) | 2/3 |") in text


@pytest.mark.slow
def test_gpt2_quick_run_measures_every_side_on_the_same_weights(tmp_path):
    # Every side in its own process on gpt2_tiny: the PyTorch sides need the peers extra.
    import json as json_module

    from benchmarks import executorch_gpt2, hf_peer

    out = tmp_path / "gpt2.json"
    finished = subprocess.run([sys.executable, "-m", "benchmarks.gpt2", "--shape", "gpt2_tiny", "--quick",
                               "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json_module.loads(out.read_text())
    decode = results["summary"]["decode"]
    assert {"keras-hub generate", "litert float32", "litert dynamic_int8", "litert_lm float32"} <= set(decode)
    # float32 decoders on the same weights make keras-hub's greedy tokens.
    assert decode["litert float32"]["tokens_equal_to_keras_hub"] == 8
    if hf_peer.available() and executorch_gpt2.available():
        assert decode["hugging face generate"]["tokens_equal_to_keras_hub"] == 8
        assert decode["executorch float32"]["tokens_equal_to_keras_hub"] == 8
        assert results["summary"]["fine_tuning_zoo_over_hugging_face"][0] > 0
    else:
        assert results["skipped"]


def test_distributed_table_quotes_each_arm_and_the_ratios_with_their_range():
    from benchmarks import distributed

    results = {"model": "gru_classifier", "examples": 4000, "epochs": 2, "global_batch_size": 64, "repeats": 2,
               "examples_per_second": {"keras fit": [900.0, 1000.0], "1 worker": [500.0, 400.0],
                                       "2 workers": [250.0, 300.0]},
               "two_workers_over_one": [0.5, 0.75], "one_worker_over_keras_fit": [500 / 900, 0.4],
               "machine": {"cpu": "Test CPU", "cores": 2}}
    text = distributed.table(results)
    assert "| keras fit | 950.0 (900.0-1000.0) |" in text
    assert "| 2 workers | 275.0 (250.0-300.0) |" in text
    assert "2 workers / 1 worker: 0.62x (0.50-0.75)" in text and "Test CPU, 2 cores" in text


def test_tflite_costs_count_matmul_flops_and_only_the_gathered_rows(tmp_path):
    import tensorflow as tf

    from benchmarks import limits

    table = tf.Variable(tf.random.normal([100, 8]))
    weights, bias = tf.Variable(tf.random.normal([8, 4])), tf.Variable(tf.random.normal([4]))

    @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.int32)])
    def model(ids):
        return tf.nn.softmax(tf.matmul(tf.reshape(tf.gather(table, ids), [3, 8]), weights) + bias)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path = tmp_path / "model.tflite"
    path.write_bytes(converter.convert())
    costs = limits.tflite_costs(path)
    # 3 of the table's 100 rows are read; the 8x4 matmul of 3 rows: 2 x 3 x 8 x 4; softmax: 12 elements.
    assert costs["constant_bytes"] == 3 * 8 * 4 + 8 * 4 * 4 + 4 * 4
    assert costs["flops"] == 2 * 3 * 8 * 4 + 12
    assert costs["input_bytes"] == 3 * 4


@pytest.mark.slow
def test_executorch_twin_of_the_cnn_classifier_computes_what_keras_computes(tmp_path):
    # Needs the peers extra (pip install -e '.[peers]'); `make test` does not install PyTorch.
    pytest.importorskip("executorch")
    import json as json_module

    import keras
    import numpy as np

    from benchmarks import executorch_peer, run_child
    from tests import helpers
    from zoo.export.tasks.text_classification import token_id_model

    model = helpers.build_tiny("cnn_classifier", class_names=["negative", "positive"], naive_bayes_buckets=64)
    for variable in model.weights:  # every weight random, the Naive Bayes table and scale too
        variable.assign(keras.random.normal(variable.shape, seed=1) if variable.shape else 0.5)
    ids = model.preprocessor.reference().encode((helpers.TEXTS * 8)[:32])
    validation_ids = model.preprocessor.reference().encode(helpers.TEXTS + ["a", "good " * 30])
    expected = np.asarray(token_id_model(model)(ids))
    assert model.naive_bayes is not None and expected[:, 0].std() > 0.01
    executorch_peer.save_inputs(model, ids, expected, tmp_path, validation_ids)
    result = run_child("benchmarks.executorch_peer", tmp_path, timeout=600)
    assert result["eager_max_abs_diff_vs_keras"] < 1e-5
    for batch in ("1", "32"):
        assert result["batches"][batch]["max_abs_diff_vs_keras"] < 1e-5
    # The programs time in a process of their own, as the speed benchmark times them.
    programs = {batch: row["path"] for batch, row in result["batches"].items()}
    spec = dict(kind="executorch", path=programs, token_ids=str(tmp_path / "ids.npy"), batch_sizes=[1, 32],
                warmup=1, repeats=3, threads=2)
    np.save(tmp_path / "ids.npy", np.asarray(ids, np.int32))
    (tmp_path / "spec.json").write_text(json_module.dumps(spec))
    seconds = run_child("benchmarks.runtime_process", tmp_path / "spec.json", timeout=600)["seconds"]
    assert {batch: len(values) for batch, values in seconds.items()} == {"1": 3, "32": 3}
    np.testing.assert_allclose(np.load(tmp_path / "validation_outputs.npy"),
                               token_id_model(model)(validation_ids), atol=1e-5)


def test_executorch_peer_refuses_a_model_it_has_no_twin_for(tmp_path):
    from benchmarks import executorch_peer
    from tests import helpers

    with pytest.raises(NotImplementedError, match="CNN classifier"):
        executorch_peer.save_inputs(helpers.build_tiny("lstm_classifier"), [[1]], [[0.5, 0.5]], tmp_path)


def test_fasttext_peer_learns_and_predicts_a_class_per_text():
    from benchmarks import fasttext_peer
    from tests import helpers

    assert fasttext_peer.normalize("A witty,\nseductive MOVIE!") == "a witty , seductive movie !"
    model = fasttext_peer.train(helpers.TEXTS, helpers.LABELS, epoch=50)
    predicted = fasttext_peer.predict(model, helpers.TEXTS)
    assert predicted.dtype == np.int64 and predicted.shape == (len(helpers.TEXTS),)
    assert (predicted == helpers.LABELS).mean() == 1.0  # separable training texts: it fits them


def test_latency_plot_gives_each_runtime_its_own_colour_grouped_by_family_peers_first():
    from benchmarks.report import runtime_colours

    runtimes = [*RUNTIMES, "litert float32 batch", "executorch xnnpack float32", "fasttext bigrams"]
    colours = runtime_colours(runtimes)
    assert sorted(colours) == sorted(runtimes)
    assert len(set(colours.values())) == len(runtimes)  # matplotlib's 10-colour cycle repeated after 10
    order = [runtime.split(" ")[0] for runtime in colours]
    assert order[0] == "executorch" and order[1] == "onnxruntime"
    assert order == sorted(order, key=order.index)  # each family's runtimes side by side


def test_bulk_labelling_peak_memory_is_the_child_program_s_own_not_its_parent_s():
    # A parent holding 400 MB: Linux's ru_maxrss in the child it starts reports at least that.
    ballast = bytearray(400 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    code = "from benchmarks.bulk_labelling import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=pathlib.Path(__file__).resolve().parent.parent)
    assert float(child.stdout) < 200, child.stdout


def test_long_document_tasks_hide_the_label_s_evidence_at_random_depths_and_use_each_review_once():
    from benchmarks import long_documents

    reviews = [f"review{i} {'great' if i % 2 else 'awful'} film" for i in range(200)]
    labels = [i % 2 for i in range(200)]
    lines = [f"filler line {i} of some length here" for i in range(500)]
    needle = long_documents.build_task("needle", reviews, labels, lines, 60, seed=1)
    spread = long_documents.build_task("spread", reviews, labels, lines, 30, seed=1)
    used = {"needle": [], "spread": []}
    depths = []
    for document in needle + spread:
        words = document["text"].split()
        found = [word for word in words if word.startswith("review")]
        used["needle" if document in needle else "spread"] += found
        polarities = [int(word[len("review"):]) % 2 for word in found]
        assert len(found) == (1 if document in needle else sum(long_documents.SPREAD_REVIEWS))
        assert document["label"] == ("neg", "pos")[max(set(polarities), key=polarities.count)]
        assert len(words) >= long_documents.FILLER_WORDS
        if document in needle:
            depths.append(words.index(found[0]))
    for corpus in used.values():  # no review in two documents of a corpus: validation never shares training's evidence
        assert len(corpus) == len(set(corpus))
    assert sum(depth > 64 for depth in depths) > len(depths) / 2 and min(depths) < 64  # mostly past 64, not always
    with pytest.raises(ValueError, match="need more reviews than the data has"):
        long_documents.build_task("spread", reviews, labels, lines, 100)
