"""zoo's generation paths agree: Keras `generate`, the LiteRT `Generator`, the LiteRT-LM runner and `zoo generate`
take and refuse the same arguments with the same messages and decode the same ids to the same text; local GPT-2
weights that cannot load are named in one line (issue 27, items 11, 12, 15, 16)."""

import json

import numpy as np
import pytest

from tests import helpers
from zoo.runtime import generator as runtime_generator
from zoo.runtime.litertlm_runner import LiteRTLMGenerator, sampler_config

NOT_UTF8 = [b"ROMEO:\xff", "ROMEO:\udcff"]  # invalid bytes, and the same prompt as a command line hands it over


# === Arguments: one rule on every path ===


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40, True, 1.5, "7"])
def test_a_seed_outside_0_to_2_32_is_refused_by_the_shared_check(seed):
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*32\), got "):
        runtime_generator.check_generation_arguments("top_k", 16, seed=seed)


def test_the_seed_range_ends_are_taken():
    for seed in (0, 2**32 - 1, None):
        runtime_generator.check_generation_arguments("top_k", 16, seed=seed)


@pytest.mark.parametrize("prompt, message", [
    (b"ROMEO:\xff", "prompt 0 is not UTF-8 text: byte 0xff at position 6"),
    ("ROMEO:\udcff", "prompt 0 is not UTF-8 text: byte 0xff at position 6"),
    ("a\ud800", "prompt 0 is not UTF-8 text: lone surrogate U+D800 at position 1"),
])
def test_a_prompt_that_is_not_utf8_gets_one_message(prompt, message):
    with pytest.raises(ValueError) as error:
        runtime_generator.prompt_list(["fine", prompt][1:])
    assert str(error.value) == message


def test_prompts_are_text():
    assert runtime_generator.prompt_list("café") == (["café"], True)
    assert runtime_generator.prompt_list([b"caf\xc3\xa9", "x"]) == (["café", "x"], False)
    with pytest.raises(ValueError, match="prompts is empty"):
        runtime_generator.prompt_list([])
    with pytest.raises(TypeError, match="prompt 1 must be a string, got int"):
        runtime_generator.prompt_list(["a", 3])


# === The LiteRT-LM runner, on a stand-in engine (the real one runs in tests/export/test_app_runtimes.py) ===


class FakeEngine:
    """What `LiteRTLMGenerator` asks of a `litert_lm.Engine`: one id per character, ids 0..99, and sessions that
    record their sampler and stream two tokens."""

    vocabulary_size = 100

    def __init__(self):
        self.samplers = []

    def tokenize(self, text):
        return [ord(character) % self.vocabulary_size for character in text]

    def detokenize(self, ids):
        return "".join(chr(32 + token) for token in ids if token < self.vocabulary_size)

    def create_session(self, sampler_config, max_output_tokens, **options):
        self.samplers.append(sampler_config)
        return FakeSession()


class FakeSession:
    def run_prefill(self, prompts):
        pass

    def run_decode_async(self):
        class Response:
            texts = ("x",)

        return [Response(), Response()]

    def get_benchmark_info(self):
        class Info:
            last_prefill_token_count = last_decode_token_count = 2
            last_prefill_tokens_per_second = last_decode_tokens_per_second = time_to_first_token_in_second = 1.0

        return Info()

    def close(self):
        pass


def fake_bundle_runner(sampler, context_length=16):
    """A `LiteRTLMGenerator` whose engine is `FakeEngine`: zoo's own checks and sampler set-up, no bundle."""
    import threading

    import litert_lm

    runner = LiteRTLMGenerator.__new__(LiteRTLMGenerator)
    runner._litert_lm, runner.engine, runner.sampler = litert_lm, FakeEngine(), sampler
    runner._lock, runner._threads = threading.RLock(), threading.local()
    runner.context_length, runner.start_token_id, runner.stop_token_ids = context_length, 0, [0]
    runner._texts = runner._vocabulary = None
    return runner


def test_top_p_on_a_bundle_samples_over_the_whole_vocabulary():
    # The engine's one sampler is top-k then top-p and refuses k = 0 ("top_k should be positive").
    runner = fake_bundle_runner(sampler_config("top_p", top_p=0.5, temperature=0.7, seed=3))
    assert runner.generate("ab", max_new_tokens=2) == "abxx"
    (config,) = runner.engine.samplers
    assert (config.top_k, config.top_p, config.temperature, config.seed) == (FakeEngine.vocabulary_size, 0.5, 0.7, 3)


def test_a_bundle_takes_every_seed_the_other_paths_take_as_its_32_bit_pattern():
    seeds = []
    for seed in (0, 2**31 - 1, 2**31, 2**32 - 1, None, None):
        runner = fake_bundle_runner(sampler_config("top_k", top_k=5, seed=seed))
        runner.generate("ab", max_new_tokens=2)
        seeds.append(runner.engine.samplers[0].seed)
    assert seeds[:4] == [0, 2**31 - 1, -(2**31), -1]
    assert all(-(2**31) <= seed < 2**31 for seed in seeds[4:])  # a fresh seed each time, not the engine's 0
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*32\), got -1$"):
        sampler_config("top_k", seed=-1)


def test_a_bundle_refuses_max_length_past_its_context_and_bad_prompts_before_the_engine_runs():
    runner = fake_bundle_runner(sampler_config())
    with pytest.raises(ValueError) as error:
        runner.generate("ab", max_length=17)
    assert str(error.value) == context_message(17, 16)
    for prompt in NOT_UTF8:
        with pytest.raises(ValueError, match="^prompt 0 is not UTF-8 text: byte 0xff at position 6$"):
            runner.generate(prompt, max_length=12)
    with pytest.raises(ValueError, match="^prompt 0 has 16 tokens .* max_length 16"):
        runner.generate("x" * 15, max_new_tokens=4)
    assert runner.engine.samplers == []
    assert runner.generate(["ab", "abc"], max_length=6, strip_prompt=True) == ["xx", "xx"]


def context_message(max_length, context):
    return (f"max_length {max_length} is past the model's context of {context} tokens (prompt and start token "
            f"included): ask for at most {context}")


# === Keras and the exported decoder: the same refusals, the same text for the same ids ===


@pytest.fixture(scope="module")
def decoder(gpt2_export):
    from zoo.runtime import Generator

    return Generator(gpt2_export / "litert" / "model.tflite")


def test_keras_and_litert_refuse_the_same_arguments_with_the_same_message(tiny_gpt2, decoder):
    from zoo.causal_lm import generate

    assert decoder.cache_length == tiny_gpt2.backbone.max_sequence_length == 64
    cases = [{"max_length": 65}, {"max_length": 10, "sampler": "top_k", "seed": -1},
             {"max_length": 10, "sampler": "top_p", "seed": 2**32}, {"max_length": 10, "sampler": "top_p", "top_p": 0.0}]
    for case in cases:
        messages = []
        for run in (lambda **args: generate(tiny_gpt2, "ROMEO:", **args), lambda **args: decoder.generate(
                "ROMEO:", **args)):
            with pytest.raises(ValueError) as error:
                run(**case)
            messages.append(str(error.value))
        assert messages[0] == messages[1], case
    assert messages[0].startswith("top_p must be")
    with pytest.raises(ValueError) as error:
        decoder.generate_token_ids(decoder.prompt_token_ids("ROMEO:"), max_length=65)
    assert str(error.value) == context_message(65, 64)
    for prompt in NOT_UTF8:
        for run in (lambda text: generate(tiny_gpt2, [text]), lambda text: decoder.generate([text])):
            with pytest.raises(ValueError, match="^prompt 0 is not UTF-8 text: byte 0xff at position 6$"):
                run(prompt)


def test_the_same_ids_decode_to_the_same_text_on_every_path(tiny_gpt2, decoder):
    from zoo.preprocessing.bpe_reference import byte_to_unicode

    tokenizer = tiny_gpt2.preprocessor.tokenizer
    byte_ids = {byte: tokenizer.vocabulary[character] for byte, character in byte_to_unicode().items()}
    letter = tokenizer.vocabulary["a"]
    # A lone lead byte, a cut 3-byte character, a stray continuation byte, an overlong form, and a whole "é".
    pieces = [[0xC3], [0xE2, 0x82], [0x80], [0xC0, 0x80], [0xC3, 0xA9]]
    rows = [[letter] + [byte_ids[byte] for byte in piece] + [letter] for piece in pieces]
    expected = [bytes([0x61, *piece, 0x61]).decode("utf-8", "replace") for piece in pieces]
    assert [decoder.tokenizer.decode(row) for row in rows] == expected
    assert tokenizer.detokenize(rows) == expected
    # What Keras `generate` hands back: the preprocessor's post-processing of the generated ids.
    token_ids = np.zeros((len(rows), 6), np.int32)
    for index, row in enumerate(rows):
        token_ids[index, : len(row) + 1] = [tokenizer.start_token_id, *row]
    texts = tiny_gpt2.preprocessor.generate_postprocess({"token_ids": token_ids, "padding_mask": token_ids != 0})
    assert list(texts) == expected


def test_zoo_generate_on_a_classifier_says_so(tiny_gru, gru_export, tmp_path, capsys):
    from zoo.cli import main

    tiny_gru.save(tmp_path / "model.keras")
    for model, kind in [(tmp_path / "model.keras", "a TextClassifier is a classifier"),
                        (gru_export / "litert" / "model.tflite", "a text-classification file"),
                        (gru_export / "onnx" / "model.onnx", "a text-classification file")]:
        assert main(["generate", str(model), "--prompt", "ROMEO:"]) == 2
        error = capsys.readouterr().err.strip()
        assert error == f"zoo generate: error: {model}: {kind}, not a language model; use `zoo predict`"


# === Local GPT-2 weights: one line naming the folder and what is missing ===


WEIGHTS_FOLDERS = ("zoo loads GPT-2 weights from a local folder (it never downloads): a keras-hub preset folder "
                   "(config.json, model.weights.h5) or a Hugging Face transformers folder (config.json, "
                   "model.safetensors, vocab.json, merges.txt)")


def weights_case(tmp_path, files):
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("files, problem", [
    ({}, "config.json is missing"),
    ({"config.json": "{not json"}, ("config.json is unreadable (JSONDecodeError: Expecting property name enclosed "
                                    "in double quotes: line 1 column 2 (char 1))")),
    ({"config.json": "[1]"}, "config.json is not a JSON object"),
    ({"config.json": "{}"}, ("config.json is neither a keras-hub preset's (no 'registered_name') nor a "
                             "transformers model's (no 'model_type')")),
    ({"config.json": '{"model_type": "bert"}'}, "config.json describes a transformers 'bert' model, not 'gpt2'"),
    ({"config.json": '{"model_type": "gpt2"}'}, "model.safetensors is missing"),
    ({"config.json": '{"model_type": "gpt2"}', "model.safetensors": "", "vocab.json": "{}"}, "merges.txt is missing"),
    ({"config.json": '{"registered_name": "keras_hub>GPT2Backbone"}'}, "model.weights.h5 is missing"),
    ({"config.json": '{"registered_name": "keras_hub>GPT2Backbone"}', "model.weights.h5": ""},
     "tokenizer.json is missing"),
])
def test_a_weights_folder_zoo_cannot_load_is_named_with_what_is_missing(tmp_path, files, problem):
    import zoo

    folder = weights_case(tmp_path, files)
    with pytest.raises(ValueError) as error:
        zoo.create_model("gpt2_small", weights=str(folder))
    assert str(error.value) == f"weights={folder}: {problem}; {WEIGHTS_FOLDERS}"


def test_weights_that_do_not_exist_are_refused_in_one_line_by_the_library_and_zoo_train(tmp_path, capsys):
    import zoo
    from zoo.cli import main

    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(ValueError) as error:
        zoo.create_model("gpt2_small", weights=str(missing))
    assert str(error.value) == f"weights={missing}: no such folder; {WEIGHTS_FOLDERS}"
    with pytest.raises(ValueError) as error:
        zoo.create_model("gpt2_small", weights="")
    assert str(error.value) == f"weights=: an empty path; {WEIGHTS_FOLDERS}"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS)
    assert main(["train", "gpt2_small", "--data", str(corpus), "--out", str(tmp_path / "out"),
                 "--set", f"weights={missing}"]) == 2
    expected = f"zoo train: error: weights={missing}: no such folder; {WEIGHTS_FOLDERS}"
    assert capsys.readouterr().err.splitlines() == [expected]


def test_a_keras_hub_preset_folder_still_loads(tmp_path):
    import keras_hub

    import zoo

    shape = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 128, "max_sequence_length": 64}
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=320, **shape)
    backbone.save_to_preset(str(tmp_path / "preset"))
    model = zoo.create_model("gpt2_tiny", weights=str(tmp_path / "preset"), tokenizer=str(helpers.tiny_bpe_directory()),
                             sequence_length=32, **shape)
    np.testing.assert_array_equal(model.backbone.token_embedding.embeddings.numpy(),
                                  backbone.token_embedding.embeddings.numpy())
    config = json.loads((tmp_path / "preset" / "config.json").read_text())
    assert "registered_name" in config
