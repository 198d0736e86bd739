"""LSTM language models: keras-hub's backbone contract, training through zoo's trainer, the
recurrent state as generation cache (every sampler, batches of prompts), saving, the CLI."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests.test_case import TestCase

import zoo
from tests import helpers
from zoo.causal_lm import generate, train_causal_lm
from zoo.models.lstm_lm import LSTMCausalLM, LSTMLMBackbone, cached_step

TINY = dict(zoo.model_info("lstm_lm").test_config)


class LSTMLMBackboneTest(TestCase):
    def setUp(self):
        self.init_kwargs = dict(vocabulary_size=10, num_layers=2, hidden_dim=2, dropout=0.1)
        self.input_data = {"token_ids": np.ones((2, 5), "int32"), "padding_mask": np.ones((2, 5), "int32")}

    def test_backbone_basics(self):
        self.run_backbone_test(cls=LSTMLMBackbone, init_kwargs=self.init_kwargs, input_data=self.input_data,
                               expected_output_shape=(2, 5, 2))

    def test_untied_output_has_its_own_matrix(self):
        tied = LSTMLMBackbone(**self.init_kwargs)
        untied = LSTMLMBackbone(**self.init_kwargs, tie_weights=False)
        assert untied.count_params() == tied.count_params() + 10 * 2
        self.run_serialization_test(untied)


def test_registered_variants():
    assert zoo.list_models("lstm_lm*") == ["lstm_lm", "lstm_lm_large", "lstm_lm_medium", "lstm_lm_small"]
    shapes = {name: zoo.model_info(name).default_config for name in zoo.list_models("lstm_lm*")}
    # Zaremba et al. 2014's small, medium and large networks.
    assert [(shapes[f"lstm_lm_{size}"]["hidden_dim"], shapes[f"lstm_lm_{size}"]["dropout"])
            for size in ("small", "medium", "large")] == [(200, 0.0), (650, 0.5), (1500, 0.65)]
    assert all(zoo.model_info(name).task == "causal-lm" and zoo.model_info(name).family == "lstm_lm"
               for name in shapes)
    assert shapes["lstm_lm"]["tokenizer"] == "train"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LSTM LM trained for two epochs by zoo's trainer (XLA on, as `zoo train` runs it)."""
    directory = tmp_path_factory.mktemp("lstm_lm")
    corpus = directory / "corpus.txt"
    corpus.write_text(helpers.CORPUS * 2)
    return train_causal_lm("lstm_lm", corpus, out_dir=directory / "out", epochs=2, batch_size=4, learning_rate=1e-2,
                           tokenizer="train", bpe_vocabulary_size=320, verbose=0, **TINY)


@pytest.mark.slow
def test_zoo_trainer_lowers_validation_loss_and_saves(trained):
    report = trained.report
    assert report["validation_loss"] < 0.6 * report["validation_loss_before"], report
    assert report["epochs_run"] == 2 and report["jit_compile"] and report["tokens_per_second"] > 0
    restored = keras.saving.load_model(trained.model_path, safe_mode=True)
    assert type(restored) is LSTMCausalLM and type(restored.backbone) is LSTMLMBackbone
    token_ids = np.array([[5, 17, 42, 7]], "int32")
    inputs = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(trained.model(inputs)), atol=1e-6)


def full_forward_logits(model, token_ids):
    """Next-token logits `[T, vocabulary]` of the plain (uncached) forward pass over one row of ids."""
    ids = np.asarray([token_ids], "int32")
    return np.asarray(model({"token_ids": ids, "padding_mask": np.ones_like(ids)}))[0]


def test_cached_step_in_pieces_is_the_full_forward(trained):
    backbone = trained.model.backbone
    token_ids = np.array([[319, 5, 17, 42, 7, 99, 3, 250]], "int32")
    expected = full_forward_logits(trained.model, token_ids[0])
    states = backbone.initial_state(1)
    assert tuple(states.shape) == (1, backbone.num_layers, 2, backbone.hidden_dim)
    pieces = []
    for start, stop in [(0, 3), (3, 4), (4, 8)]:  # a prompt, then one token, then several
        logits, states = cached_step(backbone, token_ids[:, start:stop], states)
        pieces.append(np.asarray(logits)[0])
    np.testing.assert_allclose(np.concatenate(pieces), expected, atol=1e-5)
    # What an exporter does: trace one decode step with static shapes.
    state_spec = tf.TensorSpec([1, backbone.num_layers, 2, backbone.hidden_dim], tf.float32)
    step = tf.function(lambda ids, states: cached_step(backbone, ids, states),
                       input_signature=[tf.TensorSpec([1, 1], tf.int32), state_spec])
    traced = step.get_concrete_function()
    traced_logits, traced_states = traced.structured_outputs
    assert traced_logits.shape == (1, 1, backbone.vocabulary_size) and traced_states.shape == state_spec.shape
    # No loop: LiteRT cannot run a while loop that reads variables.
    assert not {"While", "StatelessWhile"} & {op.type for op in traced.graph.get_operations()}
    _, states = cached_step(backbone, token_ids[:, :7], backbone.initial_state(1))
    logits, _ = step(tf.constant(token_ids[:, 7:8]), states)
    np.testing.assert_allclose(np.asarray(logits)[0, 0], expected[7], atol=1e-5)


def test_generation_cache_follows_each_prompt_from_the_shortest_prompts_end(trained):
    """keras-hub's sampler loop by hand: the logits at every position are the full forward's, row by row."""
    model = trained.model
    rows = [[319, 5, 17, 42, 7, 99, 3, 250, 11, 12], [319, 60, 61, 62, 63, 64, 65, 66, 67, 68]]
    prompt_lengths = [6, 2]  # the shortest prompt ends at 2: the sampler starts there
    token_ids = np.array(rows, "int32")
    padding_mask = np.arange(token_ids.shape[1])[None, :] < np.array(prompt_lengths)[:, None]
    _, cache = model._build_cache(token_ids, padding_mask)
    expected = [full_forward_logits(model, row) for row in rows]
    for index in range(min(prompt_lengths), token_ids.shape[1]):
        logits, _, cache = model.call_with_cache(token_ids[:, index - 1 : index], cache, index - 1)
        for row in range(len(rows)):
            np.testing.assert_allclose(np.asarray(logits)[row, 0], expected[row][index - 1], atol=1e-5)


@pytest.mark.slow
def test_greedy_generate_is_the_uncached_greedy_loop(trained):
    model = trained.model
    tokenizer = model.preprocessor.tokenizer
    prompt, max_length = "ROMEO: the", 48  # past the 32-token training window: a recurrence has no context limit
    token_ids = [tokenizer.end_token_id] + np.asarray(tokenizer(prompt)).tolist()
    prompt_length = len(token_ids)
    while len(token_ids) < max_length:
        token_ids.append(int(full_forward_logits(model, token_ids)[-1].argmax()))
        if token_ids[-1] == tokenizer.end_token_id:
            break
    # Learned enough to say more than the prompt, and to say it without a stop token in it.
    assert len(token_ids) - prompt_length > 5
    # generate() hands back the text without the start and stop tokens.
    expected = tokenizer.detokenize(np.asarray([t for t in token_ids if t != tokenizer.end_token_id]))
    expected = expected.numpy().decode("utf-8") if hasattr(expected, "numpy") else expected
    assert generate(model, prompt, max_length=max_length) == expected


def test_prompts_of_different_lengths_generate_what_each_generates_alone(trained):
    prompts = ["JULIET:", "NURSE: the moon is", "ROMEO: the rose is sweet, and"]
    alone = [generate(trained.model, prompt, max_length=40) for prompt in prompts]
    assert generate(trained.model, prompts, max_length=40) == alone
    assert len(set(alone)) == 3 and all(text.startswith(prompt) for text, prompt in zip(alone, prompts))


@pytest.mark.parametrize("sampler", ["top_k", "top_p", "beam"])
def test_stochastic_and_beam_samplers_run_and_are_seeded(trained, sampler):
    prompts = ["ROMEO: the", "NURSE:"]
    first = generate(trained.model, prompts, max_length=24, sampler=sampler, seed=5, temperature=1.5)
    assert all(text.startswith(prompt) and len(text) > len(prompt) for text, prompt in zip(first, prompts))
    assert generate(trained.model, prompts, max_length=24, sampler=sampler, seed=5, temperature=1.5) == first


@pytest.mark.slow
def test_model_saving_and_config_through_the_shared_helpers(tmp_path):
    model = helpers.run_model_test("lstm_lm")  # keras-hub's own fit on strings, then generate
    helpers.run_model_saving_test(model, tmp_path)  # .keras in safe mode, optimizer state included
    helpers.run_config_test(model)
    trainer = type(model)(backbone=model.backbone, preprocessor=None)  # zoo's trainer view: same network
    token_ids = np.array([[5, 17, 42]], "int32")
    inputs = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    np.testing.assert_array_equal(np.asarray(trainer(inputs)), np.asarray(model(inputs)))


def test_lora_is_refused_in_one_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS)
    with pytest.raises(ValueError, match="^lora_rank: LSTMLMBackbone has no LoRA layers"):
        train_causal_lm("lstm_lm", corpus, out_dir=tmp_path / "out", lora_rank=2, verbose=0,
                        **helpers.tiny_config("lstm_lm"))


@pytest.mark.slow
def test_distributed_step_trains_it_at_the_models_own_learning_rate(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS * 2)
    result = train_causal_lm("lstm_lm", corpus, out_dir=tmp_path / "out", epochs=2, batch_size=4,
                             strategy="mirrored", verbose=0, **helpers.tiny_config("lstm_lm"))
    report = result.report
    # Trained from scratch: the family's rate, not GPT-2's fine-tuning one.
    assert report["learning_rate"] == zoo.model_info("lstm_lm").default_config["learning_rate"] == 5e-3
    assert report["distributed"]["strategy"] == "mirrored"
    assert report["validation_loss"] < 0.7 * report["validation_loss_before"], report


@pytest.mark.slow
def test_cli_trains_and_generates(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(helpers.CORPUS * 2)
    out = tmp_path / "lm"

    def zoo_cli(*args):
        result = subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        return result.stdout

    settings = [f"{key}={value}" for key, value in dict(TINY, tokenizer="train", bpe_vocabulary_size=320,
                                                        learning_rate=0.01).items()]
    trained = zoo_cli("train", "lstm_lm", "--data", corpus, "--epochs", 1, "--batch-size", 4, "--out", out,
                      *[argument for setting in settings for argument in ("--set", setting)])
    assert "perplexity" in trained and "tokens/s" in trained
    rows = [json.loads(line) for line in zoo_cli("generate", out / "model.keras", "--prompt", "ROMEO:", "--prompt",
                                                 "JULIET: the", "--max-length", 20, "--json").splitlines()]
    assert [row["prompt"] for row in rows] == ["ROMEO:", "JULIET: the"]
    restored = zoo.load_model(out)
    assert [row["text"] for row in rows] == generate(restored, ["ROMEO:", "JULIET: the"], max_length=20)
