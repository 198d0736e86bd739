"""GPT-2 causal language models on keras-hub (`GPT2Backbone`, `GPT2CausalLM`).

The registered variants are GPT-2's published shapes plus a tiny one for tests
and demos. Weights are never downloaded: pass `weights=DIR`, a local
keras-hub preset directory or a Hugging Face transformers directory
(config.json, model.safetensors, vocab.json, merges.txt); keras-hub's preset
loader reads both. The tokenizer is GPT-2's byte-level BPE from
`zoo.preprocessing.bpe`: the published vocabulary by default, the one beside
the weights, explicit `vocabulary`/`merges`, or one trained on the corpus
(`zoo.causal_lm.train_causal_lm` does that when `tokenizer="train"`).
"""

import keras
import keras_hub

from zoo.preprocessing import bpe
from zoo.registry import register_model

# (num_layers, num_heads, hidden_dim, intermediate_dim, max_sequence_length)
GPT2_SHAPES = {
    "gpt2_tiny": dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256, max_sequence_length=256),
    "gpt2_small": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072, max_sequence_length=1024),
    "gpt2_medium": dict(num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096, max_sequence_length=1024),
    "gpt2_large": dict(num_layers=36, num_heads=20, hidden_dim=1280, intermediate_dim=5120, max_sequence_length=1024),
    "gpt2_xl": dict(num_layers=48, num_heads=25, hidden_dim=1600, intermediate_dim=6400, max_sequence_length=1024),
}

GPT2_DEFAULTS = dict(
    sequence_length=128,  # training window; prompts are packed to it
    dropout=0.1,
    weights=None,  # local keras-hub preset or transformers directory
    tokenizer="gpt2",  # "gpt2", a directory with vocab.json + merges.txt, or "train"
    vocabulary=None,  # {token: id} dict or vocab.json path (overrides `tokenizer`)
    merges=None,  # list of "a b" rules or merges.txt path
    bpe_vocabulary_size=8192,  # size of a trained vocabulary (tokenizer="train")
)


@keras.saving.register_keras_serializable(package="zoo")
class GPT2Tokenizer(keras_hub.models.GPT2Tokenizer):
    """keras-hub's GPT-2 tokenizer, always on its TensorFlow code path.

    keras-hub 0.32 tokenizes eagerly with Hugging Face `tokenizers` and a
    Llama-3 split pattern, but inside `tf.function`/`tf.data` (so in every
    SavedModel) with RE2 patterns that follow GPT-2's original split. The two
    disagree on contractions and some whitespace (" 't" is " " + "'t" on the
    first, " '" + "t" on the second, as in OpenAI's GPT-2). zoo trains, serves
    and exports with one tokenizer, so it pins the TensorFlow path, the one a
    SavedModel can run and the one matching the published GPT-2 tokenization.
    `zoo.preprocessing.bpe_reference` reproduces it in plain Python.
    """

    def __init__(self, vocabulary=None, merges=None, **kwargs):
        kwargs["_allow_python_workflow"] = False
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)


@keras.saving.register_keras_serializable(package="zoo")
class GPT2CausalLM(keras_hub.models.GPT2CausalLM):
    """keras-hub's GPT-2 causal LM whose `.keras` file also restores its optimizer.

    Keras skips `compile_from_config` for tasks with a custom `compile()`
    (keras-hub's), so a reloaded GPT2CausalLM came back with a fresh,
    unbuilt optimizer and its saved state (step count, moments) was dropped;
    compiling from the saved config and building the optimizer lets the
    saved variables load, so training resumes where it stopped.
    """

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


def build_tokenizer(tokenizer="gpt2", vocabulary=None, merges=None, weights=None):
    """A `GPT2Tokenizer` from the first source given."""
    if vocabulary is not None or merges is not None:
        if vocabulary is None or merges is None:
            raise ValueError("vocabulary and merges must be given together")
        return GPT2Tokenizer(vocabulary=_maybe_str(vocabulary), merges=_maybe_str(merges))
    if weights is not None and tokenizer == "gpt2":
        loaded = keras_hub.models.GPT2Tokenizer.from_preset(str(weights))
        return GPT2Tokenizer(vocabulary=loaded.vocabulary, merges=loaded.merges)
    if tokenizer == "gpt2":
        vocabulary, merges = bpe.gpt2_vocabulary_files()
    elif tokenizer == "train":
        raise ValueError(
            "tokenizer='train' needs a corpus: train with zoo.causal_lm.train_causal_lm (or `zoo train`), "
            "or pass vocabulary= and merges="
        )
    else:
        vocabulary, merges = bpe.vocabulary_files(tokenizer)
    return GPT2Tokenizer(vocabulary=str(vocabulary), merges=str(merges))


def _maybe_str(value):
    return value if isinstance(value, (dict, list)) else str(value)


def build_gpt2_causal_lm(
    shape, *, sequence_length, dropout, weights, tokenizer, vocabulary, merges, bpe_vocabulary_size
):
    del bpe_vocabulary_size  # used by the trainer before it calls create_model
    gpt2_tokenizer = build_tokenizer(tokenizer, vocabulary, merges, weights)
    if weights is not None:
        backbone = keras_hub.models.GPT2Backbone.from_preset(str(weights))
        loaded = {key: backbone.get_config()[key] for key in shape}
        if loaded != shape:
            raise ValueError(f"{weights}: weights have shape {loaded}, this model expects {shape}")
    else:
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=gpt2_tokenizer.vocabulary_size(), dropout=dropout, **shape
        )
    if backbone.vocabulary_size < gpt2_tokenizer.vocabulary_size():
        raise ValueError(
            f"tokenizer has {gpt2_tokenizer.vocabulary_size()} tokens but the model embeds only "
            f"{backbone.vocabulary_size}"
        )
    if sequence_length > backbone.max_sequence_length:
        raise ValueError(
            f"sequence_length {sequence_length} exceeds the model's max_sequence_length {backbone.max_sequence_length}"
        )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(gpt2_tokenizer, sequence_length=sequence_length)
    return GPT2CausalLM(backbone=backbone, preprocessor=preprocessor)


# The shared tests' overrides: one narrow layer, a short context. Tests pass
# their own small trained BPE vocabulary (`tokenizer=DIR`) next to these.
GPT2_TEST_CONFIG = dict(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=128, max_sequence_length=64,
                        sequence_length=32, dropout=0.0)


def _register(name, description):
    shape = GPT2_SHAPES[name]

    def builder(**config) -> GPT2CausalLM:
        # Shape keys are overridable like everything else (timm-style); the
        # variant only sets their defaults.
        return build_gpt2_causal_lm({key: config.pop(key) for key in shape}, **config)

    builder.__name__ = name
    builder.__doc__ = description
    register_model(
        task="causal-lm",
        family="gpt2",
        default_config=dict(GPT2_DEFAULTS, **shape),
        test_config=GPT2_TEST_CONFIG,
    )(builder)


_register("gpt2_tiny", "GPT-2 causal LM, tiny shape (2 layers, 64 wide) for tests and demos.")
_register("gpt2_small", "GPT-2 causal LM, small shape (124M parameters).")
_register("gpt2_medium", "GPT-2 causal LM, medium shape (355M parameters).")
_register("gpt2_large", "GPT-2 causal LM, large shape (774M parameters).")
_register("gpt2_xl", "GPT-2 causal LM, XL shape (1.5B parameters).")
