"""GPT-2 export: TF Serving SavedModel (`generate`, `logits`) and the LiteRT
KV-cache decoder run by `zoo.runtime.Generator`, checked against Keras."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests import helpers
from tests.models.test_gpt2 import CORPUS, TINY
from zoo.export import ExportError, export
from zoo.export.formats import litert
from zoo.export.tasks import causal_lm
from zoo.runtime import Generator, TextClassifierRunner
from zoo.preprocessing import bpe

PROMPTS = ["ROMEO: the", "JULIET:", "the rose is"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    vocabulary, merges = bpe.train_byte_level_bpe([CORPUS], vocabulary_size=320)
    directory = bpe.write_vocabulary_files(tmp_path_factory.mktemp("bpe"), vocabulary, merges)[0].parent
    keras.utils.set_random_seed(0)
    return zoo.create_model("gpt2_tiny", tokenizer=str(directory), **TINY)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export(model, root=tmp_path_factory.mktemp("serving"), validation_data=PROMPTS, cache_length=32,
                  validation_length=24)


@pytest.mark.slow
def test_layout_report_and_builtin_only_files(exported):
    path = exported.path
    assert exported.name == "gpt2_tiny" and path.name == "1"
    for name in ["saved_model.pb", "assets.extra/tf_serving_warmup_requests", "litert/model.tflite",
                 "litert/model.json", "litert/model.dynamic_int8.tflite", "litert/model.dynamic_int8.json",
                 "export_report.json", "manifest.json"]:
        assert (path / name).is_file(), name
    parity = exported.report["parity"]
    # fp32 artifacts reproduce Keras's greedy generation token for token (export fails otherwise).
    assert parity["saved_model"]["identical_sequences"] == 1.0
    assert parity["litert float32"]["identical_sequences"] == 1.0
    assert parity["litert float32"]["prefill_logits_max_abs_diff"] < 1e-4
    # int8 weights move the logits (by ~3e-3 here) but not, on this model, the greedy choice.
    assert parity["litert dynamic_int8"]["token_agreement"] >= 0.9
    # Both LiteRT files also ran under the default XNNPACK delegate.
    for key in ["litert float32", "litert dynamic_int8"]:
        assert parity[key]["xnnpack"]["prompts"] == len(PROMPTS) and parity[key]["xnnpack"]["generated_tokens"] > 0
    assert parity["litert float32"]["xnnpack"]["token_agreement"] >= 0.9
    assert parity["litert dynamic_int8"]["bytes"] < parity["litert float32"]["bytes"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["task"] == "causal-lm"
    for key in ["litert float32", "litert dynamic_int8"]:
        ops = manifest["artifacts"][key]["ops"]
        assert all(op.isupper() for op in ops), ops
        assert set(manifest["artifacts"][key]["signatures"]) == {"prefill", "decode"}
        # A step reads each layer's cache input in place: no per-element STRIDED_SLICE of it, no UNPACK
        # splitting a stacked cache, no rewritten copy of it (zoo.export.architectures.gpt2).
        file = path / "litert" / ("model.tflite" if key == "litert float32" else "model.dynamic_int8.tflite")
        for signature, signature_ops in litert.signature_op_names(file.read_bytes()).items():
            assert "BATCH_MATMUL" in signature_ops, (signature, signature_ops)
            assert not {"STRIDED_SLICE", "UNPACK", "DYNAMIC_UPDATE_SLICE"} & set(signature_ops), (
                signature, signature_ops)


@pytest.mark.slow
def test_saved_model_generate_and_logits_signatures(model, exported):
    loaded = tf.saved_model.load(str(exported.path))
    assert {"generate", "logits", "serving_default"} <= set(loaded.signatures)
    outputs = loaded.signatures["generate"](prompts=tf.constant(PROMPTS[:2]), max_length=tf.constant(20))
    reference = causal_lm.keras_greedy_token_ids(model, PROMPTS[:2], 20)
    generator = Generator(exported.path / "litert" / "model.tflite")
    for i, prompt in enumerate(PROMPTS[:2]):
        text, completion = (outputs[key].numpy()[i].decode("utf-8", "replace") for key in ("texts", "completions"))
        assert text == prompt + completion
        new_ids = [t for t in reference[i] if t != generator.end_token_id]
        assert completion == generator.tokenizer.decode(new_ids)
        assert len(generator.prompt_token_ids(prompt)) + len(reference[i]) <= 20
    token_ids = np.array([[5, 17, 42, 7]], np.int32)
    logits = loaded.signatures["logits"](token_ids=tf.constant(token_ids))["logits"].numpy()
    expected = model.backbone.token_embedding(
        model.backbone({"token_ids": token_ids, "padding_mask": np.ones_like(token_ids, bool)}), reverse=True)
    np.testing.assert_allclose(logits, np.asarray(expected), atol=1e-5)


@pytest.mark.slow
def test_litert_greedy_equals_keras_token_for_token_on_unseen_prompts(model, exported):
    generator = Generator(exported.path / "litert" / "model.tflite", delegates=False)
    prompts = ["NURSE: the moon", "FRIAR: and so is the", "x"]
    expected = causal_lm.keras_greedy_token_ids(model, prompts, 30)
    for prompt, ids in zip(prompts, expected):
        assert generator.prompt_token_ids(prompt) == causal_lm.prompt_token_ids(model, prompt)
        assert generator.generate_token_ids(generator.prompt_token_ids(prompt), max_length=30) == ids


def test_generator_samplers_lengths_and_errors(exported, tmp_path):
    generator = Generator(exported.path / "litert" / "model.dynamic_int8.tflite")
    prompt_ids = generator.prompt_token_ids("ROMEO:")
    assert len(generator.generate_token_ids(prompt_ids, max_length=len(prompt_ids) + 1)) == 1
    # max_length beyond the cache (32) is refused, as on every generation path (issue 27, item 12).
    with pytest.raises(ValueError, match="max_length 500 is past the model's context of 32 tokens"):
        generator.generate_token_ids(prompt_ids, max_length=500)
    for sampler in ["top_k", "top_p"]:
        first = generator.generate("ROMEO:", max_length=20, sampler=sampler, seed=7)
        assert first == generator.generate("ROMEO:", max_length=20, sampler=sampler, seed=7)
        assert first.startswith("ROMEO:")
    batch = generator.generate(["ROMEO:", "JULIET:"], max_length=12, strip_prompt=True)
    assert len(batch) == 2 and all(isinstance(text, str) for text in batch)
    with pytest.raises(ValueError, match="sampler"):
        generator.generate("x", sampler="beam")
    with pytest.raises(ValueError, match="field 'task'"):
        TextClassifierRunner(exported.path / "litert" / "model.tflite")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        Generator(tmp_path / "missing.tflite")


def test_bad_export_arguments_leave_nothing(model, tmp_path):
    with pytest.raises(ExportError, match="cache_length"):
        export(model, root=tmp_path, cache_length=10_000, validation_data=PROMPTS)
    with pytest.raises(ExportError, match="variants"):
        export(model, root=tmp_path, variants=("int8",), validation_data=PROMPTS)
    with pytest.raises(ExportError, match="'onnx' does not export this causal-lm model"):
        export(model, root=tmp_path, formats=("saved_model", "onnx"), validation_data=PROMPTS)
    assert not any(path.name.isdigit() or path.name.startswith(".tmp") for path in tmp_path.rglob("*"))


def test_prefill_length_divides_the_cache():
    assert [causal_lm.prefill_length(n) for n in (32, 128, 10, 17, 24, 2)] == [16, 16, 10, 1, 12, 2]


def test_prompt_longer_than_one_prefill_chunk(model, exported):
    generator = Generator(exported.path / "litert" / "model.tflite")
    assert generator.prefill_length == 16
    ids = [generator.end_token_id] + [int(i) for i in np.random.default_rng(0).integers(1, 300, 28)]  # 16 + 13
    outputs = generator.prefill(ids)
    expected = np.asarray(causal_lm.token_logits(causal_lm.decoder_model(model), tf.constant([ids], tf.int32)))[0, -1]
    np.testing.assert_allclose(outputs["logits"][0], expected, atol=1e-4)
    # decode's cache inputs now hold every prompt position of every layer; rows past the prompt are not read.
    for name in [name for pair in generator.spec["generation"]["cache_inputs"] for name in pair]:
        assert not np.any(generator._decode.input(name)[:, :, : len(ids)] == 0.0), name


def test_an_lstm_language_model_exports_its_recurrent_state_as_the_cache(tmp_path):
    # The recipe's other cache: no positions, every step returns the whole state ("replace").
    lstm = helpers.build_tiny("lstm_lm", num_layers=2)
    helpers.CausalLMCase.fit(lstm)
    with pytest.raises(ExportError, match="'litert_lm' does not export this causal-lm model"):
        export(lstm, root=tmp_path, formats=("litert_lm",), validation_data=PROMPTS)
    result = export(lstm, root=tmp_path, validation_data=PROMPTS, cache_length=32, variants=())
    assert set(result.report["parity"]) == {"keras", "saved_model", "litert float32"}
    decoder = result.path / "litert" / "model.tflite"
    generation = json.loads(decoder.with_suffix(".json").read_text())["generation"]
    assert generation["cache_update"] == "replace" and "cache_layout" not in generation
    assert generation["cache_inputs"] == [["state_h_0", "state_c_0"], ["state_h_1", "state_c_1"]]
    assert "WHILE" not in litert.op_names(decoder.read_bytes())
    generator = Generator(decoder, delegates=False)
    # A prompt over one prefill chunk (16), its last chunk padded: the state is the real tokens' only.
    ids = [generator.end_token_id] + [int(i) for i in np.random.default_rng(0).integers(1, 300, 20)]
    expected = np.asarray(causal_lm.token_logits(causal_lm.decoder_model(lstm), tf.constant([ids], tf.int32)))[0, -1]
    np.testing.assert_allclose(generator.prefill(ids)["logits"][0], expected, atol=1e-4)
    # One Generator, several prompts: each starts from the zero state, not where the last one ended.
    prompts = ["NURSE: the moon is pale, and so is the", "JULIET:", "ROMEO: the"]
    expected = causal_lm.keras_greedy_token_ids(lstm, prompts, 30)
    for prompt, ids in zip(prompts, expected):
        assert generator.generate_token_ids(generator.prompt_token_ids(prompt), max_length=30) == ids
    # And a prompt prefilled after those generations gets its own logits.
    short = [generator.end_token_id, 5, 17, 42]
    expected = np.asarray(causal_lm.token_logits(causal_lm.decoder_model(lstm), tf.constant([short], tf.int32)))[0, -1]
    np.testing.assert_allclose(generator.prefill(short)["logits"][0], expected, atol=1e-4)
