"""GPT-2 causal language models on keras-hub (`GPT2Backbone`, `GPT2CausalLM`).

The registered variants are GPT-2's published shapes plus a tiny one for tests
and demos. Weights are never downloaded: pass `weights=DIR`, a local
keras-hub preset directory (config.json, model.weights.h5, and tokenizer.json
when the tokenizer comes from there too) or a Hugging Face transformers
directory (config.json, model.safetensors, vocab.json, merges.txt);
keras-hub's preset loader reads both, after `check_weights_folder` has named
anything missing (keras-hub's own errors speak of Kaggle and Hugging Face
handles it would download). The tokenizer is GPT-2's byte-level BPE from
`zoo.preprocessing.bpe`: the published vocabulary by default, the one beside
the weights, explicit `vocabulary`/`merges`, or one trained on the corpus
(`zoo.causal_lm.train_causal_lm` does that when `tokenizer="train"`).
"""

import json
import pathlib

import keras
import keras_hub
from keras_hub.src.utils.tensor_utils import preprocessing_function

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

    @preprocessing_function
    def detokenize(self, inputs):
        """Text of the ids, each byte sequence that is not UTF-8 read as U+FFFD.

        keras-hub hands eager text out as Python strings decoded with
        errors="ignore", so an incomplete character's bytes vanished; the
        replacement here is the one `zoo.runtime`'s decoder (Python's "replace")
        writes, so the same ids read the same on every generation path.
        (`preprocessing_function`, keras-hub's own wrapper, keeps the inner text
        a tensor until this replacement is done, then converts as keras-hub does.)
        """
        import tensorflow as tf

        return tf.strings.unicode_transcode(super().detokenize(inputs), "UTF-8", "UTF-8", errors="replace",
                                            replacement_char=0xFFFD, replace_control_characters=False)


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


class WeightsError(ValueError):
    """A `weights=` folder zoo cannot load GPT-2 weights from."""


WEIGHTS_FOLDERS = ("a keras-hub preset folder (config.json, model.weights.h5) or a Hugging Face transformers folder "
                   "(config.json, model.safetensors, vocab.json, merges.txt)")


def check_weights_folder(weights, with_tokenizer=False):
    """Raise `WeightsError` (one line: the folder, what is wrong there, what zoo looks for) unless `weights` is a
    local GPT-2 folder keras-hub can read; `with_tokenizer`: the tokenizer comes from it too."""
    folder = pathlib.Path(weights)

    def refuse(problem):
        return WeightsError(f"weights={weights}: {problem}; zoo loads GPT-2 weights from a local folder (it never "
                            f"downloads): {WEIGHTS_FOLDERS}")

    if not str(weights).strip():  # pathlib reads "" as the current folder
        raise refuse("an empty path")
    if not folder.is_dir():
        raise refuse("not a folder" if folder.exists() else "no such folder")
    config = _read_config(folder, refuse)
    if "registered_name" in config:
        required = [("model.weights.h5", "model_*.weights.h5")] + ([("tokenizer.json",)] if with_tokenizer else [])
    elif config.get("model_type") == "gpt2":
        required = [("model.safetensors", "model.safetensors.index.json"), ("vocab.json",), ("merges.txt",)]
    elif "model_type" in config:
        raise refuse(f"config.json describes a transformers {config['model_type']!r} model, not 'gpt2'")
    else:
        raise refuse("config.json is neither a keras-hub preset's (no 'registered_name') nor a transformers "
                     "model's (no 'model_type')")
    for names in required:
        found = [path for name in names for path in sorted(folder.glob(name))]
        if not found:
            raise refuse(f"{names[0]} is missing")
        _check_readable(found[0], refuse)


def _read_config(folder, refuse):
    path = folder / "config.json"
    if not path.is_file():
        raise refuse("config.json is missing")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refuse(f"config.json is unreadable ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise refuse("config.json is not a JSON object")
    return config


def _check_readable(path, refuse):
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        raise refuse(f"{path.name} is unreadable ({error.strerror or error})") from None


def _from_preset(loader, weights):
    """keras-hub's loader on a checked folder; what it still refuses (a truncated file, say) as one WeightsError."""
    try:
        return loader(str(weights))
    except Exception as error:  # keras-hub raises many kinds; the user needs the folder and the cause
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise WeightsError(f"weights={weights}: keras-hub could not load it ({type(error).__name__}: "
                           f"{first_line})") from error


def build_tokenizer(tokenizer="gpt2", vocabulary=None, merges=None, weights=None):
    """A `GPT2Tokenizer` from the first source given."""
    if vocabulary is not None or merges is not None:
        if vocabulary is None or merges is None:
            raise ValueError("vocabulary and merges must be given together")
        return GPT2Tokenizer(vocabulary=_maybe_str(vocabulary), merges=_maybe_str(merges))
    if weights is not None and tokenizer == "gpt2":
        check_weights_folder(weights, with_tokenizer=True)
        loaded = _from_preset(keras_hub.models.GPT2Tokenizer.from_preset, weights)
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
    if weights is not None:
        check_weights_folder(weights)
    gpt2_tokenizer = build_tokenizer(tokenizer, vocabulary, merges, weights)
    if weights is not None:
        backbone = _from_preset(keras_hub.models.GPT2Backbone.from_preset, weights)
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
