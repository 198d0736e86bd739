"""GPT-2 causal LMs: registry shapes, local checkpoints in both formats,
fine-tuning, samplers, resume after interruption. Tiny models, no downloads."""

import json

import keras
import numpy as np
import pytest

import zoo
from zoo.causal_lm import SAMPLERS, build_trainer, generate, next_token_accuracy, train_causal_lm
from zoo.preprocessing import bpe

# Repetitive enough that two tiny epochs measurably lower validation loss.
CORPUS = "\n".join(
    f"{who}: the {thing} is {how}, and so is the {other}." for who in ("ROMEO", "JULIET", "NURSE", "FRIAR")
    for thing in ("night", "moon", "rose", "sword", "letter") for how in ("sweet", "pale", "sharp")
    for other in ("day", "sun")
)
# intermediate_dim = 4 x hidden_dim, as in every GPT-2 (the transformers config implies it).
TINY = dict(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=128, max_sequence_length=64, sequence_length=32)


@pytest.fixture(scope="module")
def vocabulary_dir(tmp_path_factory):
    vocabulary, merges = bpe.train_byte_level_bpe([CORPUS], vocabulary_size=320)
    directory = tmp_path_factory.mktemp("bpe")
    bpe.write_vocabulary_files(directory, vocabulary, merges)
    return directory


def tiny_lm(vocabulary_dir, **overrides):
    keras.utils.set_random_seed(0)
    return zoo.create_model("gpt2_tiny", tokenizer=str(vocabulary_dir), **dict(TINY, **overrides))


def logits(model, token_ids):
    return model.backbone.token_embedding(model.backbone(
        {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids, dtype=bool)}), reverse=True).numpy()


def test_registered_shapes():
    assert zoo.list_models("gpt2*") == ["gpt2_large", "gpt2_medium", "gpt2_small", "gpt2_tiny", "gpt2_xl"]
    shapes = {name: zoo.model_info(name).default_config for name in zoo.list_models("gpt2*")}
    assert (shapes["gpt2_small"]["num_layers"], shapes["gpt2_small"]["hidden_dim"]) == (12, 768)
    assert (shapes["gpt2_medium"]["num_layers"], shapes["gpt2_medium"]["hidden_dim"]) == (24, 1024)
    assert (shapes["gpt2_large"]["num_layers"], shapes["gpt2_large"]["hidden_dim"]) == (36, 1280)
    assert (shapes["gpt2_xl"]["num_layers"], shapes["gpt2_xl"]["hidden_dim"]) == (48, 1600)
    assert all(zoo.model_info(name).task == "causal-lm" for name in shapes)


@pytest.mark.slow
def test_published_gpt2_vocabulary_is_offline():
    model = zoo.create_model("gpt2_tiny", **TINY)
    assert np.asarray(model.preprocessor.tokenizer("Hello world")).tolist() == [15496, 995]
    assert model.backbone.vocabulary_size == 50257


@pytest.mark.slow
def test_trained_bpe_matches_huggingface_tokenizers_ids(vocabulary_dir):
    from tokenizers import ByteLevelBPETokenizer

    reference = ByteLevelBPETokenizer(str(vocabulary_dir / "vocab.json"), str(vocabulary_dir / "merges.txt"))
    tokenizer = tiny_lm(vocabulary_dir).preprocessor.tokenizer
    for text in ["ROMEO: the moon is pale.", "Ünïcode café 123!!\n\n  spaces", ""]:
        assert np.asarray(tokenizer(text)).tolist() == reference.encode(text).ids
    vocabulary = json.loads((vocabulary_dir / "vocab.json").read_text())
    assert vocabulary[bpe.END_OF_TEXT] == len(vocabulary) - 1 == tokenizer.end_token_id


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["keras_hub_preset", "transformers"])
def test_local_checkpoint_round_trip(vocabulary_dir, tmp_path, layout):
    model = tiny_lm(vocabulary_dir)
    if layout == "keras_hub_preset":
        model.save_to_preset(str(tmp_path))
    else:
        model.backbone.export_to_transformers(str(tmp_path))
        model.preprocessor.tokenizer.export_to_transformers(str(tmp_path))
        for name in ["config.json", "model.safetensors", "vocab.json", "merges.txt"]:
            assert (tmp_path / name).is_file(), name
    restored = zoo.create_model("gpt2_tiny", weights=str(tmp_path), **TINY)
    token_ids = np.array([[5, 17, 42, 7, 99, 3]], "int32")
    np.testing.assert_allclose(logits(restored, token_ids), logits(model, token_ids), atol=1e-5)
    text = "JULIET: the rose is sweet."
    assert np.asarray(restored.preprocessor.tokenizer(text)).tolist() == np.asarray(model.preprocessor.tokenizer(text)).tolist()
    with pytest.raises(ValueError, match="weights have shape"):
        zoo.create_model("gpt2_tiny", weights=str(tmp_path), **dict(TINY, num_layers=2))


def write_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS * 2)
    return path


def quick_train(tmp_path, out_dir, **kwargs):
    return train_causal_lm(
        "gpt2_tiny", write_corpus(tmp_path), out_dir=out_dir, batch_size=4, learning_rate=3e-3,
        jit_compile=False, tokenizer="train", bpe_vocabulary_size=320, verbose=0, **dict(TINY, **kwargs),
    )


@pytest.mark.slow
def test_fine_tune_lowers_validation_loss_and_saves(tmp_path):
    result = quick_train(tmp_path, tmp_path / "lm", epochs=2)
    report = result.report
    assert report["validation_loss"] < 0.8 * report["validation_loss_before"], report
    assert report["tokens_per_second"] > 0 and report["epochs_run"] == 2
    assert 0 < report["history"]["accuracy"][-1] <= 1
    assert sorted(p.name for p in (tmp_path / "lm" / "checkpoints").iterdir()) == [
        "epoch_001.weights.h5", "epoch_002.weights.h5"]
    restored = keras.saving.load_model(result.model_path, safe_mode=True)
    token_ids = np.array([[5, 17, 42, 7]], "int32")
    np.testing.assert_allclose(logits(restored, token_ids), logits(result.model, token_ids), atol=1e-5)


def test_next_token_accuracy_is_keras_accuracy_without_argmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7, 50)).astype("float32")
    labels = rng.integers(0, 50, size=(3, 7))
    labels[0, :4] = logits[0, :4].argmax(-1)  # some right answers
    mask = (rng.random((3, 7)) > 0.3).astype("float32")
    keras_metric = keras.metrics.SparseCategoricalAccuracy()
    keras_metric.update_state(labels, logits, sample_weight=mask)
    zoo_metric = keras.metrics.MeanMetricWrapper(next_token_accuracy)
    zoo_metric.update_state(labels, logits, sample_weight=mask)
    assert float(keras_metric.result()) > 0
    np.testing.assert_allclose(float(zoo_metric.result()), float(keras_metric.result()), rtol=1e-6)


def test_trainer_clips_the_global_gradient_norm(vocabulary_dir):
    optimizer = build_trainer(tiny_lm(vocabulary_dir), steps=10, clipnorm=0.5, jit_compile=False).optimizer
    # One norm over all gradients (GPT-2, torch's clip_grad_norm_), not one per variable.
    assert optimizer.global_clipnorm == 0.5 and optimizer.clipnorm is None


@pytest.mark.slow
def test_lora_trains_only_adapters(tmp_path):
    result = quick_train(tmp_path, tmp_path / "lora", epochs=1, lora_rank=4, max_train_windows=8)
    trainable = [w.path for w in result.model.backbone.trainable_weights]
    # keras-hub's LoRA trains the adapters (and the query/value biases) only.
    assert any("lora_kernel" in path for path in trainable)
    assert all("lora_kernel" in path or path.endswith("/bias") for path in trainable), trainable
    assert not any("embedding" in path or "feedforward" in path for path in trainable)


@pytest.mark.slow
def test_resume_after_interruption(tmp_path):
    class Killed(Exception):
        pass

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Killed()

    out_dir = tmp_path / "resumed"
    with pytest.raises(Killed):
        quick_train(tmp_path, out_dir, epochs=3, callbacks=[KillAfterFirstEpoch()])
    assert (out_dir / "backup").is_dir() and not (out_dir / "model.keras").exists()
    result = quick_train(tmp_path, out_dir, epochs=3)
    # Epoch 1 was kept; only epochs 2 and 3 ran again (the report's history has all three).
    assert result.report["resumed_from_epoch"] == 1 and result.report["epochs_run"] == 3
    assert not (out_dir / "backup").exists()


@pytest.mark.slow
def test_all_samplers_and_batched_prompts(vocabulary_dir):
    model = tiny_lm(vocabulary_dir)
    prompts = ["ROMEO: the", "NURSE:"]
    for sampler in SAMPLERS:
        outputs = generate(model, prompts, max_length=16, sampler=sampler, seed=3)
        assert len(outputs) == 2 and all(out.startswith(prompt) for out, prompt in zip(outputs, prompts)), sampler
    first = generate(model, "ROMEO:", max_length=16, sampler="top_k", seed=3)
    assert first == generate(model, "ROMEO:", max_length=16, sampler="top_k", seed=3)
    assert generate(model, "ROMEO:", max_length=16) == generate(model, "ROMEO:", max_length=16)
    with pytest.raises(ValueError, match="sampler"):
        generate(model, "x", sampler="nucleus")
