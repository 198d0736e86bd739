"""`zoo.runtime` runs exported files with TensorFlow and Keras unimportable, as on a Raspberry Pi."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests import helpers

# Makes every TensorFlow-stack import fail in the child process, as on a machine without them.
BLOCK_TENSORFLOW = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {"tensorflow", "keras", "keras_hub", "tensorflow_text", "tf_keras", "tf2onnx"}
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed here")
    sys.meta_path.insert(0, Blocker())
""")


def run_without_tensorflow(code):
    completed = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW + textwrap.dedent(code)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def exported(tiny_gru, gru_export, tiny_gpt2, gpt2_export):
    return tiny_gru, gru_export, tiny_gpt2, gpt2_export


@pytest.mark.slow
def test_classifier_and_decoder_run_with_tensorflow_unimportable(exported):
    from zoo.export.tasks.causal_lm import keras_greedy_token_ids

    classifier, classifier_version, lm, lm_version = exported
    texts = helpers.UNSEEN + helpers.TEXTS[:4]
    output = run_without_tensorflow(f"""
        import json, sys
        import zoo.runtime
        from zoo.runtime import Generator, TextClassifierRunner
        probabilities = {{path: TextClassifierRunner(path).predict({texts!r}).tolist()
                         for path in {[str(classifier_version / "litert" / "model.tflite"),
                                       str(classifier_version / "onnx" / "model.onnx")]!r}}}
        generator = zoo.runtime.load({str(lm_version / "litert" / "model.tflite")!r}, delegates=False)
        tokens = generator.generate_token_ids(generator.prompt_token_ids("NURSE: the moon"), max_length=20)
        heavy = sorted(name for name in sys.modules if name.partition(".")[0] in ("tensorflow", "keras", "keras_hub"))
        print(json.dumps({{"probabilities": probabilities, "tokens": tokens, "heavy": heavy}}))
    """)
    result = json.loads(output)
    assert result["heavy"] == []
    expected = classifier.predict(texts, verbose=0)
    for probabilities in result["probabilities"].values():
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert result["tokens"] == keras_greedy_token_ids(lm, ["NURSE: the moon"], 20)[0]


def test_cli_predicts_and_generates_from_exported_files_without_tensorflow(exported):
    _, classifier_version, _, lm_version = exported
    output = run_without_tensorflow(f"""
        from zoo.cli import main
        assert main(["predict", {str(classifier_version / "onnx" / "model.onnx")!r}, "a great film", "--json"]) == 0
        assert main(["generate", {str(lm_version / "litert" / "model.tflite")!r}, "--prompt", "ROMEO:",
                     "--max-length", "12"]) == 0
        assert main(["list"]) == 0  # the written-down registry (zoo/catalog.json)
        assert main(["train", "lstm_classifier"]) == 2  # training needs the full install: one clear line, exit 2
    """)
    assert '"label":' in output and "ROMEO:" in output


@pytest.mark.slow
def test_import_zoo_loads_no_tensorflow_and_zoo_models_registers_zoo_layers_with_keras(tmp_path):
    code = ("import sys, zoo, zoo.runtime; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "import keras, zoo.models; print(keras.saving.get_registered_object('zoo>TextClassifier').__name__)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "TextClassifier"


def test_sidecar_errors_name_the_file_and_field(exported, tmp_path):
    from zoo.runtime import TextClassifierRunner

    _, classifier_version, _, lm_version = exported
    model = tmp_path / "model.tflite"
    model.write_bytes((classifier_version / "litert" / "model.tflite").read_bytes())
    (tmp_path / "model.json").write_text(json.dumps({"format": "zoo.text_classifier.litert/1"}))
    with pytest.raises(ValueError, match=r"model.json: field 'format': expected 'zoo.sidecar/1'"):
        TextClassifierRunner(model)
    with pytest.raises(ValueError, match=r"field 'task': expected 'text-classification', got 'causal-lm'"):
        TextClassifierRunner(lm_version / "litert" / "model.tflite")
    with pytest.raises(ValueError, match=r"expected a .tflite or .onnx file"):
        TextClassifierRunner(classifier_version / "manifest.json")


def test_a_dynamic_length_signature_gets_rows_by_length_each_call_cut_to_its_longest_row():
    from zoo.runtime import backends

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 12, size=23)
    token_ids = np.zeros((23, 12), np.int32)
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(1, 50, size=length)
    calls = []

    def signature(token_ids):  # stands in for a file: the sum of each row's ids, and records what it was given
        calls.append(token_ids.copy())
        return {"out": token_ids.sum(axis=1, keepdims=True).astype(np.float32)}

    outputs = backends.run_in_batches(signature, token_ids, "token_ids", "out", None, chunk=5, any_length=True)
    np.testing.assert_array_equal(outputs[:, 0], token_ids.sum(axis=1))  # every row's own output, in row order
    assert [len(call) for call in calls] == [5, 5, 5, 5, 3]
    for call in calls:  # each call as wide as its longest row (at least one id), never cutting an id off
        assert call.shape[1] == max(1, np.count_nonzero(call, axis=1).max())
    assert [call.shape[1] for call in calls] == sorted(call.shape[1] for call in calls)



def test_memory_allocated_under_huge_pages_keeps_its_contents_and_gets_2_mib_pages_where_the_kernel_has_them():
    # A fresh process, as a Generator's usually is: there a 16 MiB block is its own new mapping (this one's
    # allocator may serve it from memory it already holds, which `huge_pages` leaves alone).
    output = run_without_tensorflow("""
        import json
        import numpy as np
        from zoo.runtime import backends
        with backends.huge_pages():
            block = np.arange(4 * 2**20, dtype=np.int32)
        intact = bool((block == np.arange(4 * 2**20, dtype=np.int32)).all())
        # The advice splits the block's mapping where its 2 MiB pages begin and end: sum over the pieces.
        first, last = block.ctypes.data, block.ctypes.data + block.nbytes
        huge_kib, overlaps = 0, False
        for line in open("/proc/self/smaps").read().splitlines():
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                start, end = (int(value, 16) for value in fields[0].split("-"))
                overlaps = start < last and first < end
            elif overlaps and fields[0] == "AnonHugePages:":
                huge_kib += int(fields[1])
        print(json.dumps({"intact": intact, "huge_kib": huge_kib}))
    """)
    result = json.loads(output)
    assert result["intact"]
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as mode:
        thp_on = "[never]" not in mode.read()
    # madvise or always: every whole 2 MiB page inside the 16 MiB mapping (at least 7) is a huge page.
    assert result["huge_kib"] >= (7 * 2048 if thp_on else 0)
