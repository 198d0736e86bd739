"""The speed benchmark harness in --quick mode: well-formed results, tables and plots (no timing checks)."""

import json
import subprocess
import sys

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
    "onnxruntime float32",
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
    assert rows["litert float32", 32]["invokes_per_batch"] == 32

    for artifact in ("keras", "saved_model (text)", "litert float32", "litert int8", "onnxruntime float32"):
        figures = entry["artifacts"][artifact]
        assert figures["bytes"] > 0 and 0.0 <= figures["accuracy"] <= 1.0, (artifact, figures)
    assert entry["ratios"]["litert_float32_vs_onnxruntime_batch_1"] > 0
    assert entry["ratios"]["saved_model_text_vs_token_ids_batch_1"] > 0
    assert entry["training"]["examples_per_second"] > 0
    assert entry["onnx"]["converter"].startswith("tf2onnx")


def test_markdown_and_plots(quick_run):
    markdown = (quick_run / "speed_quick.md").read_text()
    assert markdown.count("<!-- results:start -->") == 1 and markdown.count("<!-- results:end -->") == 1
    assert "| litert int8 |" in markdown and "| onnxruntime float32 |" in markdown
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
