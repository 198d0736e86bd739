"""LSTM language models on keras-hub (`LSTMLMBackbone`, `LSTMCausalLM`).

The classic neural language model: Mikolov's RNNLM as regularized by
Zaremba, Sutskever and Vinyals (2014, "Recurrent Neural Network
Regularization"): token embeddings, stacked LSTMs, dropout on the
non-recurrent connections only, and a softmax over the vocabulary whose
weights are the input embedding (Press and Wolf 2017, "Using the Output
Embedding to Improve Language Models"). It trains and generates exactly like
GPT-2 in zoo (`zoo.causal_lm`), with the same byte-level BPE tokenizer
(`zoo.models.gpt2.build_tokenizer`), by default one learned on the corpus.

Generation is keras-hub's: `LSTMCausalLM.call_with_cache` advances the
recurrent state, which is the whole cache. Its layout, one tensor:

    states[batch, num_layers, 2, hidden_dim]   # [:, i, 0] = h, [:, i, 1] = c of LSTM layer i

`cached_step(backbone, token_ids, states)` is the same step as a plain
function (logits and the next states), for exporters to trace.

Example:
>>> model = zoo.create_model("lstm_lm", tokenizer="gpt2")
>>> model.compile(sampler="greedy")
>>> model.generate("ROMEO:", max_length=20)
"""

import keras
import keras_hub
from keras import ops

from zoo.models.gpt2 import GPT2CausalLM, build_tokenizer
from zoo.registry import register_model

# Zaremba et al. initialize every weight uniformly in [-0.05, 0.05]. Unlike
# Keras's orthogonal default for recurrent kernels (a QR decomposition, which
# TensorFlow has no bfloat16 kernel for), it also builds under a bfloat16 policy.
_INITIALIZER_LIMIT = 0.05


def _initializer():
    return keras.initializers.RandomUniform(-_INITIALIZER_LIMIT, _INITIALIZER_LIMIT)


@keras.saving.register_keras_serializable(package="zoo")
class LSTMLMBackbone(keras_hub.models.Backbone):
    """Token embedding, `num_layers` stacked LSTMs and dropout; outputs the hidden sequence.

    Takes keras-hub's causal-LM inputs (`token_ids`, `padding_mask`) of any
    length. Dropout follows Zaremba et al.: on the embeddings, between LSTM
    layers and on the output, never on the recurrent connections. The
    padding mask is accepted for keras-hub's `CausalLM` and ignored: the
    preprocessor pads on the right, and a left-to-right recurrence never
    carries what comes after a token back to it.

    Args:
        vocabulary_size: int. The size of the token vocabulary.
        num_layers: int. The number of stacked LSTM layers.
        hidden_dim: int. The width of the embeddings and of every LSTM
            (one width, so the output can share the embedding matrix).
        dropout: float. Dropout rate on the non-recurrent connections.
        tie_weights: bool. Whether the output logits use the transposed
            input embedding (`ReversibleEmbedding`) instead of their own matrix.
        dtype: string or `keras.mixed_precision.DTypePolicy`. The dtype
            policy of the layers' computations and weights.

    Example:
    >>> backbone = LSTMLMBackbone(vocabulary_size=320, num_layers=2, hidden_dim=64)
    >>> token_ids = np.array([[5, 17, 42]], "int32")
    >>> backbone({"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}).shape
    (1, 3, 64)
    """

    def __init__(self, vocabulary_size, num_layers, hidden_dim, dropout=0.0, tie_weights=True, dtype=None,
                 **kwargs):
        # === Layers ===
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=tie_weights,
            embeddings_initializer=_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.recurrent_layers = [
            keras.layers.LSTM(
                hidden_dim,
                return_sequences=True,
                return_state=True,
                kernel_initializer=_initializer(),
                recurrent_initializer=_initializer(),
                dtype=dtype,
                name=f"lstm_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.recurrent_dropouts = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"lstm_dropout_{i}") for i in range(num_layers)
        ]

        # === Functional Model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings_dropout(self.token_embedding(token_id_input))
        for lstm, lstm_dropout in zip(self.recurrent_layers, self.recurrent_dropouts):
            sequence, _, _ = lstm(x)
            x = lstm_dropout(sequence)
        super().__init__(
            inputs={"token_ids": token_id_input, "padding_mask": padding_mask_input},
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.tie_weights = tie_weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
                "tie_weights": self.tie_weights,
            }
        )
        return config

    def initial_state(self, batch_size):
        """Zeros `[batch_size, num_layers, 2, hidden_dim]`: the state before the first token."""
        return ops.zeros((batch_size, self.num_layers, 2, self.hidden_dim), dtype=self.compute_dtype)

    def call_with_state(self, token_ids, states, mask=None, unroll=False):
        """The inference forward pass from `states`: `(hidden_states, next_states)`.

        Args:
            token_ids: int tensor `[batch, length]`.
            states: `[batch, num_layers, 2, hidden_dim]`, the (h, c) of each
                layer before `token_ids[:, 0]`.
            mask: optional bool `[batch, length]`; where False, a token is
                skipped (the states pass through it unchanged).
            unroll: run each LSTM's cell once per token in Python instead of
                the layer's loop; needs a static `length` and no `mask`. The
                traced graph then has no loop at all.
        """
        if unroll and mask is not None:
            raise ValueError("call_with_state: unroll=True takes no mask")
        x = self.token_embedding(token_ids)
        next_states = []
        for i, lstm in enumerate(self.recurrent_layers):
            state = [states[:, i, 0, :], states[:, i, 1, :]]
            if unroll:
                outputs = []
                for position in range(token_ids.shape[1]):
                    output, state = lstm.cell(x[:, position, :], state)
                    outputs.append(output)
                x = ops.stack(outputs, axis=1)
            else:
                x, *state = lstm(x, initial_state=state, mask=mask)
            next_states.append(ops.stack(state, axis=1))
        # Dropout is the identity at inference: the hidden states are the last LSTM's outputs.
        return x, ops.stack(next_states, axis=1)


def cached_step(backbone, token_ids, states):
    """One cached forward pass of an `LSTMLMBackbone`: `(logits, next_states)`, without a loop.

    The function an exporter traces: with `token_ids` `[1, T]` (T static)
    and `states` `[1, num_layers, 2, hidden_dim]` (zeros,
    `backbone.initial_state(1)`, before a prompt) it returns the logits
    `[1, T, vocabulary_size]` of the token after each of `token_ids` and the
    states after the last one. Each LSTM's cell runs once per token, so the
    traced graph is matmuls and activations only (no while loop reading
    variables, which LiteRT cannot run). Feeding a prompt in pieces, one
    token at a time included, gives the logits of feeding it whole.
    """
    hidden_states, next_states = backbone.call_with_state(token_ids, states, unroll=True)
    return backbone.token_embedding(hidden_states, reverse=True), next_states


@keras.saving.register_keras_serializable(package="zoo")
class LSTMCausalLM(keras_hub.models.CausalLM):
    """An LSTM language model: next-token logits over the vocabulary, and keras-hub's `generate()`.

    The logits are the backbone's hidden states through its
    `ReversibleEmbedding` (the tied input embedding, or its own matrix with
    `tie_weights=False`). For generation the cache is the recurrent state
    (see the module docstring for its layout), so every sampler keras-hub has
    (greedy, top-k, top-p, beam, ...) runs, prompts of different lengths
    in one batch included.

    Args:
        backbone: an `LSTMLMBackbone`.
        preprocessor: a `keras_hub.models.GPT2CausalLMPreprocessor` (zoo's
            byte-level BPE) or None for a model that takes token ids.

    Example:
    >>> model = zoo.create_model("lstm_lm", tokenizer="gpt2")
    >>> trainer = LSTMCausalLM(backbone=model.backbone, preprocessor=None)  # same weights
    """

    backbone_cls = LSTMLMBackbone
    preprocessor_cls = keras_hub.models.GPT2CausalLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional Model ===
        inputs = backbone.input
        logits = backbone.token_embedding(backbone(inputs), reverse=True)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    # keras-hub's custom compile() makes Keras skip restoring the optimizer: the same fix as GPT-2's.
    compile_from_config = GPT2CausalLM.compile_from_config

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """keras-hub's cached forward pass: `(logits, hidden_states, cache)` after `token_ids` `[batch, T]`.

        `cache` is the recurrent state before `token_ids`; the state holds
        the whole past, so `cache_update_index` (a position, which a
        transformer's cache needs) is not used. The step is `cached_step`'s
        (unrolled over the static `T`), so exported decoders run Keras's own.
        """
        del cache_update_index
        hidden_states, cache = self.backbone.call_with_state(token_ids, cache, unroll=True)
        return self.backbone.token_embedding(hidden_states, reverse=True), hidden_states, cache

    def _build_cache(self, token_ids, padding_mask):
        """The state after each prompt's first `index - 1` tokens, where `index` is the shortest prompt's length.

        keras-hub's samplers start at `index` and feed token `index - 1`
        first; rows whose prompts are longer get their own next prompt
        tokens fed back step by step. The states pass through the masked
        tokens unchanged, so the shapes stay static (one XLA compilation).
        """
        index = ops.min(ops.sum(ops.cast(padding_mask, "int32"), axis=-1))
        positions = ops.arange(ops.shape(token_ids)[1], dtype="int32")
        consumed = ops.broadcast_to(positions[None, :] < index - 1, ops.shape(token_ids))
        states = self.backbone.initial_state(ops.shape(token_ids)[0])
        return self.backbone.call_with_state(token_ids, states, mask=consumed)

    def generate_step(self, inputs, stop_token_ids=None):
        """keras-hub's compilable generation function for one batch of `token_ids` and `padding_mask`."""
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        hidden_states, cache = self._build_cache(token_ids, padding_mask)
        index = ops.min(ops.sum(ops.cast(padding_mask, "int32"), axis=-1))

        def next(prompt, cache, index):
            # The logits of position `index` come from the token before it.
            previous = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])
            logits, hidden_states, cache = self.call_with_cache(previous, cache, index - 1)
            return ops.squeeze(logits, axis=1), ops.squeeze(hidden_states, axis=1), cache

        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=cache,
            index=index,
            mask=padding_mask,
            stop_token_ids=stop_token_ids,
            hidden_states=hidden_states,
            model=self,
        )
        if stop_token_ids is None:
            return {"token_ids": token_ids, "padding_mask": ops.ones_like(token_ids, dtype="bool")}
        # Keep each row up to and including the first stop token it generated.
        generated_stop = ops.logical_and(
            ops.any(ops.equal(token_ids[..., None], ops.convert_to_tensor(stop_token_ids, "int32")), axis=-1),
            ops.logical_not(padding_mask),
        )
        generated_stop = ops.cast(generated_stop, "int32")
        stops_before = ops.cumsum(generated_stop, axis=-1) - generated_stop
        return {"token_ids": token_ids, "padding_mask": ops.equal(stops_before, 0)}


def build_lstm_causal_lm(*, num_layers, hidden_dim, dropout, tie_weights, sequence_length, tokenizer, vocabulary,
                         merges, bpe_vocabulary_size, learning_rate):
    """An `LSTMCausalLM` with zoo's byte-level BPE preprocessor; the vocabulary sets the embedding's size."""
    del bpe_vocabulary_size, learning_rate  # the trainer's (zoo.causal_lm.train_causal_lm)
    lm_tokenizer = build_tokenizer(tokenizer, vocabulary, merges)
    backbone = LSTMLMBackbone(vocabulary_size=lm_tokenizer.vocabulary_size(), num_layers=num_layers,
                              hidden_dim=hidden_dim, dropout=dropout, tie_weights=tie_weights)
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(lm_tokenizer, sequence_length=sequence_length)
    return LSTMCausalLM(backbone=backbone, preprocessor=preprocessor)


# Zaremba et al.'s three shapes, and zoo's default for tinyshakespeare on a small CPU.
LSTM_LM_SHAPES = {
    "lstm_lm": dict(num_layers=2, hidden_dim=256, dropout=0.3),
    "lstm_lm_small": dict(num_layers=2, hidden_dim=200, dropout=0.0),
    "lstm_lm_medium": dict(num_layers=2, hidden_dim=650, dropout=0.5),
    "lstm_lm_large": dict(num_layers=2, hidden_dim=1500, dropout=0.65),
}

LSTM_LM_DEFAULTS = dict(
    sequence_length=64,  # training window; each window starts from the zero state
    tie_weights=True,  # output logits through the input embedding (Press and Wolf)
    tokenizer="train",  # "train" (a BPE learned on the corpus), "gpt2", or a directory with vocab.json + merges.txt
    vocabulary=None,  # {token: id} dict or vocab.json path (overrides `tokenizer`)
    merges=None,  # list of "a b" rules or merges.txt path
    bpe_vocabulary_size=4096,  # size of a trained vocabulary (tokenizer="train")
    learning_rate=5e-3,  # AdamW's peak rate in zoo's trainer: from scratch, ten times GPT-2's fine-tuning rate
)

# The shared tests' overrides; they pass their own small trained BPE vocabulary (`tokenizer=DIR`).
LSTM_LM_TEST_CONFIG = dict(num_layers=1, hidden_dim=32, dropout=0.0, sequence_length=32)


def _register(name, description):
    def builder(**config) -> LSTMCausalLM:
        return build_lstm_causal_lm(**config)

    builder.__name__ = name
    builder.__doc__ = description
    register_model(
        task="causal-lm",
        family="lstm_lm",
        default_config=dict(LSTM_LM_DEFAULTS, **LSTM_LM_SHAPES[name]),
        test_config=LSTM_LM_TEST_CONFIG,
    )(builder)


_register("lstm_lm", "LSTM language model, 2 x 256 with tied embeddings: tinyshakespeare on a 2-core CPU.")
_register("lstm_lm_small", "LSTM language model, Zaremba et al.'s small shape (2 x 200, no dropout).")
_register("lstm_lm_medium", "LSTM language model, Zaremba et al.'s medium shape (2 x 650, dropout 0.5).")
_register("lstm_lm_large", "LSTM language model, Zaremba et al.'s large shape (2 x 1500, dropout 0.65).")
