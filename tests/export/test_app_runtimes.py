"""The runtimes phone apps use, run for real on tiny models: MediaPipe Tasks' TextClassifier
on every classifier LiteRT file (from the file's own TFLite metadata, no sidecar), and
Google's LiteRT-LM engine on the `.litertlm` bundle of a GPT-2."""

import json

import numpy as np
import pytest

from tests import helpers
from zoo.export import ParityError, export, isolation, tflite_metadata
from zoo.runtime import TextClassifierRunner
from zoo.runtime.mediapipe_runner import MediaPipeTextClassifier

# Upper case, punctuation, NUL, unicode, an empty text, a text past the window.
RAW_TEXTS = ["Great film!", "a DULL, boring... story", "i loved it\x00 but not this", "café ÉPIQUE", "",
             "great " * 30, "don't-stop wonderful"]


@pytest.fixture(scope="module")
def mediapipe_exact_export(tmp_path_factory):
    model = helpers.build_tiny("lstm_classifier", class_names=["negative", "positive"], lower=False,
                               punctuation="delimit")
    model.fit(helpers.TEXTS, helpers.LABELS, epochs=3, batch_size=8, verbose=0)
    result = export(model, root=tmp_path_factory.mktemp("serving"), formats=("litert",),
                    validation_data=(helpers.TEXTS + RAW_TEXTS, list(helpers.LABELS) + [1, 0, 1, 1, 0, 1, 1]))
    return model, result


@pytest.mark.slow
def test_mediapipe_runs_every_variant_with_zoo_ids_when_the_tokenizer_is_exact(mediapipe_exact_export):
    model, result = mediapipe_exact_export
    assert model.preprocessor.tokenizer.mediapipe_exact
    for variant in ("float32", "float16", "dynamic_int8", "int8"):
        figures = result.report["parity"][f"litert {variant}"]["mediapipe"]
        assert figures["ids_exact"] and figures["label_agreement_vs_runner"] == 1.0, (variant, figures)
        if variant == "float32":
            assert figures["max_abs_diff_vs_runner"] <= 1e-6 and figures["label_agreement"] == 1.0
        path = result.path / "litert" / ("model.tflite" if variant == "float32" else f"model.{variant}.tflite")
        # What an app gets on raw text it never saw: MediaPipe tokenizes with the file's
        # metadata, zoo's runner with the sidecar; the same ids, the same scores.
        with MediaPipeTextClassifier(path) as classifier:
            np.testing.assert_allclose(classifier.scores(RAW_TEXTS), TextClassifierRunner(path).predict(RAW_TEXTS),
                                       atol=1e-6)
            assert classifier.class_names == ["negative", "positive"]


def test_the_metadata_names_the_model_and_carries_vocabulary_and_labels(mediapipe_exact_export):
    model, result = mediapipe_exact_export
    flatbuffer = (result.path / "litert" / "model.tflite").read_bytes()
    metadata = tflite_metadata.read_metadata(flatbuffer)
    assert metadata["name"] == model.name and metadata["version"] == "1"
    assert metadata["min_parser_version"] == "1.2.1"
    assert set(metadata["packed_files"]) == {"vocab.txt", "labels.txt"}
    vocabulary = tflite_metadata.read_associated_file(flatbuffer, "vocab.txt").decode("utf-8").split("\n")
    assert vocabulary[:2] == ["<PAD> 0", "<UNKNOWN> 1"] and vocabulary[2] == f"{model.preprocessor.tokenizer.vocabulary[2]} 2"
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["artifacts"]["litert float32"]["mediapipe"]["ids_exact"] is True


@pytest.mark.slow
def test_with_zoos_default_tokenizer_mediapipe_runs_and_the_report_says_its_ids_differ(tmp_path):
    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    result = export(model, root=tmp_path, formats=("litert",), variants=(), validation_data=RAW_TEXTS)
    figures = result.report["parity"]["litert float32"]["mediapipe"]
    assert figures["ids_exact"] is False and figures["examples"] == len(RAW_TEXTS)
    assert "train with lower=False, punctuation='delimit'" in result.format_table()


@pytest.mark.slow
def test_a_mediapipe_score_off_by_more_than_1e_6_fails_the_export(tmp_path, monkeypatch):
    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"], lower=False,
                               punctuation="delimit")
    real_run = isolation.run_in_child

    def mediapipe_off(*args):
        outputs = real_run(*args)
        if "mediapipe" in outputs:
            outputs["mediapipe"]["probabilities"] = outputs["mediapipe"]["probabilities"] + 1e-5
        return outputs

    monkeypatch.setattr(isolation, "run_in_child", mediapipe_off)
    with pytest.raises(ParityError, match=r"litert float32 \(mediapipe\).*exceeds 1e-06"):
        export(model, root=tmp_path, formats=("litert",), variants=(), validation_data=helpers.TEXTS)
    assert not any(path.name.isdigit() for path in (tmp_path / model.name).iterdir())


@pytest.fixture(scope="module")
def litert_lm_export(tmp_path_factory):
    model = helpers.build_tiny("gpt2_tiny", num_layers=2)
    helpers.CausalLMCase.fit(model)
    prompts = helpers.PROMPTS + ["NURSE: the moon is pale, and so is the sun. FRIAR: the letter"]  # > one prefill chunk
    result = export(model, root=tmp_path_factory.mktemp("serving"), formats=("litert_lm",),
                    validation_data=prompts, cache_length=48, validation_length=40)
    return model, result


@pytest.mark.slow
def test_litert_lm_engine_reproduces_keras_greedy_token_for_token(litert_lm_export):
    model, result = litert_lm_export
    parity = result.report["parity"]
    assert parity["litert_lm float32"]["identical_sequences"] == 1.0
    assert parity["litert_lm float32"]["prompts"] == len(helpers.PROMPTS) + 1
    # int8 weights, float activations: on this model the greedy choice does not move.
    assert parity["litert_lm dynamic_int8"]["token_agreement"] >= 0.9
    manifest = json.loads((result.path / "manifest.json").read_text())
    bundle = manifest["artifacts"]["litert_lm float32"]
    assert bundle["path"] == "litert_lm/model.litertlm" and bundle["max_num_tokens"] == 48
    assert set(bundle["signatures"]) == {"decode", "prefill_8", "prefill_16"}
    assert {tensor["name"] for tensor in bundle["signatures"]["decode"]["outputs"]} == {
        "logits", "kv_cache_k_0", "kv_cache_v_0", "kv_cache_k_1", "kv_cache_v_1"}
    assert all(op.isupper() for op in bundle["ops"]) and "DYNAMIC_UPDATE_SLICE" in bundle["ops"]
    assert parity["litert_lm dynamic_int8"]["bytes"] < parity["litert_lm float32"]["bytes"]


def test_zoo_generate_runs_a_bundle_on_the_engine(litert_lm_export):
    from tests.test_cli import run_zoo
    from zoo.export.tasks.causal_lm import keras_greedy_token_ids

    model, result = litert_lm_export
    bundle = result.path / "litert_lm" / "model.litertlm"
    generated = run_zoo("generate", bundle, "--prompt", "ROMEO: the", "--max-length", 20, "--json")
    assert generated.returncode == 0, generated.stderr
    text = json.loads(generated.stdout)["text"]
    expected = [t for t in keras_greedy_token_ids(model, ["ROMEO: the"], 20)[0]
                if t != model.preprocessor.tokenizer.end_token_id]
    continuation = model.preprocessor.tokenizer.detokenize(expected)
    continuation = continuation.numpy().decode("utf-8") if hasattr(continuation, "numpy") else continuation
    assert text == "ROMEO: the" + continuation


def test_zoo_generate_samples_top_p_on_a_bundle_by_seed_without_engine_logs(litert_lm_export):
    # Issue 27, items 11 and 15: top_p reached the engine as k = 0 ("top_k should be positive"), among ~30 log lines.
    from tests.test_cli import run_zoo

    bundle = litert_lm_export[1].path / "litert_lm" / "model.litertlm"
    runs = [run_zoo("generate", bundle, "--prompt", "ROMEO:", "--sampler", "top_p", "--top-p", "0.95",
                    "--temperature", "2", "--seed", seed, "--max-length", 30, "--json") for seed in (1, 1, 2)]
    assert [run.returncode for run in runs] == [0, 0, 0] and [run.stderr for run in runs] == ["", "", ""]
    texts = [json.loads(run.stdout)["text"] for run in runs]
    assert texts[0] == texts[1] != texts[2]


def test_a_bundle_leaves_its_version_as_exported_and_a_flipped_bit_is_refused(litert_lm_export, tmp_path):
    import shutil

    from tests.test_cli import run_zoo
    from zoo.runtime.litertlm_runner import LiteRTLMGenerator
    from zoo.runtime.verify import VerificationError

    _, result = litert_lm_export
    # The engine's machine-specific cache goes to the user's cache folder, not into the version.
    assert not list(result.path.rglob("*xnnpack_cache*"))
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert not [name for name in manifest["files"] if "cache" in name]
    copy = tmp_path / "gpt2_tiny" / "1"
    shutil.copytree(result.path, copy)  # new mtimes: an engine cache keyed on them would be written again
    with LiteRTLMGenerator(copy / "litert_lm" / "model.litertlm") as generator:
        assert generator.generate_text("ROMEO:", max_new_tokens=4) is not None
    checked = run_zoo("verify", copy)
    assert checked.returncode == 0, checked.stderr
    bundle = copy / "litert_lm" / "model.litertlm"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="sha256 differs"):
        LiteRTLMGenerator(bundle)
