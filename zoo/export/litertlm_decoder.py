"""GPT-2 as a LiteRT-LM bundle (`.litertlm`): the decoder graph Google's LiteRT-LM engine runs.

LiteRT-LM (litert-lm 0.18.1) drives a `.tflite` file itself: it tokenizes,
chunks the prompt over the file's prefill signatures, owns the KV cache and
samples. The contract it expects, and this module ships, for keras-hub's
`GPT2Backbone` with `L` layers, `H` heads of width `D` and a cache of `C`
rows (the context length, read by the engine from dim 2 of the caches):

- signatures `decode` and `prefill_<T>` for each `T` in
  `prefill_lengths_for(C)` (the engine takes the longest prefill that fits
  the tokens left in the prompt and in the cache, so a short one ships too);
- inputs `tokens` int32 `[1, T]` (`T` = 1 for `decode`), `input_pos` int32
  `[T]` (each token's index in the sequence; consecutive from
  `input_pos[0]`), `kv_cache_k_<i>` / `kv_cache_v_<i>` float32 `[1, H, C, D]`
  for `i` in `0..L-1`;
- outputs: the full updated caches under the input names (the new tokens'
  keys and values are written with DYNAMIC_UPDATE_SLICE at row
  `input_pos[0]` and attention reads the updated cache, rows `<= input_pos[t]`
  for token `t`, so the engine can bind each cache input and output to one
  buffer, as it does on CPU), and for `decode` `logits` float32 `[1, 1, V]`.
  `prefill_<T>` has no logits by default: the engine never reads them (it
  runs the prompt's last token through `decode`; a bundle with prefill
  logits `[1, T, V]` generates the same tokens), and for GPT-2 small they
  would add a `T x 768 x 50257` matmul to every chunk.

The math is keras-hub's `GPT2CausalLM.call_with_cache` (the same layers, the
same order), with the position embedding gathered at `input_pos`.
`write_conversion_saved_model` writes the converter's input with zoo's
`ExportArchive` (weights frozen into the flatbuffer by the converter);
`zoo.export.formats.litert.convert` turns it into builtins-only TFLite;
`build_bundle` packs that file, a Hugging Face `tokenizer.json` made by
`huggingface_tokenizer_json` and the `LlmMetadata` into the `.litertlm`
file with litert-lm-builder's Python API (`LitertLmFileBuilder`).
`zoo.runtime.litertlm_runner.LiteRTLMGenerator` runs it.
"""

import json
import pathlib
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from zoo.export.archive import ExportArchive

DECODE_SIGNATURE = "decode"
PREFILL_PREFIX = "prefill_"
TOKENS = "tokens"
INPUT_POS = "input_pos"
LOGITS = "logits"


def key_cache_name(layer):
    return f"kv_cache_k_{layer}"


def value_cache_name(layer):
    return f"kv_cache_v_{layer}"


def prefill_signature(length):
    return f"{PREFILL_PREFIX}{int(length)}"


def signature_keys(cache_length, prefill_lengths=None):
    """The signatures of the file, prefills first: `("prefill_8", "prefill_32", "decode")`."""
    lengths = prefill_lengths_for(cache_length) if prefill_lengths is None else prefill_lengths
    return tuple(prefill_signature(length) for length in lengths) + (DECODE_SIGNATURE,)


def prefill_lengths_for(cache_length):
    """Prefill chunk lengths for a cache of `cache_length` rows: a short one and a long one.

    The engine takes the longest prefill signature that fits both the prompt
    tokens still to run and the cache rows left, so the short one (8) keeps
    a short prompt from paying for a long chunk and lets the last rows of
    the cache be prefilled; the long one (a quarter of the cache, 16 to 128)
    moves long prompts in few calls.
    """
    cache_length = int(cache_length)
    if cache_length < 2:
        raise ValueError(f"cache_length must be at least 2, got {cache_length}")
    short = min(8, cache_length)
    long = min(128, max(16, cache_length // 4), cache_length)
    return tuple(sorted({short, long}))


def cache_shape(backbone, cache_length):
    """One layer's key (or value) cache: `[1, heads, cache_length, head_dim]`."""
    return [1, backbone.num_heads, int(cache_length), backbone.hidden_dim // backbone.num_heads]


def cached_step(backbone, tokens, input_pos, caches):
    """`T` tokens at positions `input_pos` through GPT-2, writing their keys/values into `caches`.

    Args:
        tokens: int32 `[1, T]`.
        input_pos: int32 `[T]`, consecutive positions starting at `input_pos[0]`.
        caches: `[(keys, values)]` per layer, float32 `[1, heads, C, head_dim]`.
    Returns:
        `hidden` `[1, T, hidden_dim]` (after the final layer norm) and the
        updated `[(keys, values)]`.
    """
    _, heads, length, head_dim = caches[0][0].shape
    count = tokens.shape[1]
    x = backbone.token_embedding(tokens)
    positions = tf.gather(backbone.position_embedding.position_embeddings, input_pos)  # [T, hidden]
    x = backbone.embeddings_add((x, positions[tf.newaxis]))
    start = [0, 0, input_pos[0], 0]
    # Token t sees the cache rows up to its own position (the rows it and the
    # tokens before it just wrote included).
    visible = tf.range(length)[tf.newaxis, :] <= input_pos[:, tf.newaxis]  # [T, C]
    scale = 1.0 / np.sqrt(head_dim)

    def by_head(projection):  # [1, T, heads, head_dim] -> [heads, T, head_dim]
        if count == 1:
            return tf.reshape(projection, [heads, 1, head_dim])
        return tf.transpose(tf.reshape(projection, [count, heads, head_dim]), [1, 0, 2])

    updated = []
    for layer, (key_cache, value_cache) in zip(backbone.transformer_layers, caches):
        attention = layer._self_attention_layer
        hidden = layer._self_attention_layer_norm(x)
        query = by_head(attention._query_dense(hidden))
        key = by_head(attention._key_dense(hidden))
        value = by_head(attention._value_dense(hidden))
        key_cache = xla.dynamic_update_slice(key_cache, key[tf.newaxis], start)
        value_cache = xla.dynamic_update_slice(value_cache, value[tf.newaxis], start)
        keys = tf.reshape(key_cache, [heads, length, head_dim])
        values = tf.reshape(value_cache, [heads, length, head_dim])
        scores = tf.where(visible, tf.matmul(query, keys, transpose_b=True) * scale, -1e9)  # [heads, T, C]
        mixed = tf.matmul(tf.nn.softmax(scores, axis=-1), values)  # [heads, T, head_dim]
        mixed = tf.reshape(tf.transpose(mixed, [1, 0, 2]) if count > 1 else mixed, [1, count, heads, head_dim])
        x = x + attention._output_dense(mixed)
        hidden = layer._feedforward_layer_norm(x)
        x = x + layer._feedforward_output_dense(layer._feedforward_intermediate_dense(hidden))
        updated.append((key_cache, value_cache))
    return backbone.layer_norm(x), updated


def write_conversion_saved_model(backbone, directory, cache_length, prefill_lengths=None, prefill_logits=False):
    """SavedModel with `prefill_<T>` (each `T` in `prefill_lengths`) and `decode`, the converter's input.

    `prefill_logits`: also return `logits` `[1, T, V]` from each prefill
    (LiteRT-LM does not need them). Returns the directory. Convert with
    `zoo.export.formats.litert.convert(directory, quantization, signature_keys=signature_keys(...))`.
    """
    cache_length = int(cache_length)
    if cache_length > backbone.max_sequence_length:
        raise ValueError(f"cache_length {cache_length} is past the model's max_sequence_length "
                         f"{backbone.max_sequence_length}")
    prefill_lengths = prefill_lengths_for(cache_length) if prefill_lengths is None else tuple(prefill_lengths)
    shape = cache_shape(backbone, cache_length)
    layers = backbone.num_layers
    cache_names = [name for layer in range(layers) for name in (key_cache_name(layer), value_cache_name(layer))]

    def step(inputs, logits=True):
        caches = [(inputs[key_cache_name(layer)], inputs[value_cache_name(layer)]) for layer in range(layers)]
        hidden, updated = cached_step(backbone, inputs[TOKENS], inputs[INPUT_POS], caches)
        outputs = {LOGITS: backbone.token_embedding(hidden, reverse=True)} if logits else {}  # [1, T, V]
        for layer, (keys, values) in enumerate(updated):
            outputs[key_cache_name(layer)] = keys
            outputs[value_cache_name(layer)] = values
        return outputs

    def input_signature(tokens):
        return [{TOKENS: tf.TensorSpec([1, tokens], tf.int32, name=TOKENS),
                 INPUT_POS: tf.TensorSpec([tokens], tf.int32, name=INPUT_POS),
                 **{name: tf.TensorSpec(shape, tf.float32, name=name) for name in cache_names}}]

    archive = ExportArchive()
    archive.track(backbone)
    for length in prefill_lengths:
        if not 1 <= length <= cache_length:
            raise ValueError(f"prefill length {length} must be from 1 to cache_length {cache_length}")
        archive.add_endpoint(prefill_signature(length), lambda inputs: step(inputs, prefill_logits),
                             input_signature=input_signature(int(length)))
    archive.add_endpoint(DECODE_SIGNATURE, step, input_signature=input_signature(1))
    archive.write_out(str(directory), verbose=False)
    return pathlib.Path(directory)


def huggingface_tokenizer_json(vocabulary, merges, end_token="<|endoftext|>"):
    """GPT-2's byte-level BPE as a Hugging Face `tokenizer.json` string (what LiteRT-LM's HF tokenizer reads).

    Args:
        vocabulary: `{token: id}` (keras-hub's `GPT2Tokenizer.vocabulary`).
        merges: `["a b", ...]` (keras-hub's `GPT2Tokenizer.merges`).
        end_token: registered as a special token (matched whole in text,
            as keras-hub's tokenizer does; dropped when decoding).
    """
    import tokenizers

    pairs = [tuple(merge.split(" ")) for merge in merges if merge and not merge.startswith("#version")]
    tokenizer = tokenizers.ByteLevelBPETokenizer(dict(vocabulary), pairs, add_prefix_space=False)
    if end_token in vocabulary:
        tokenizer.add_special_tokens([end_token])
    return tokenizer.to_str()


def llm_metadata(start_token_id, stop_token_ids, max_num_tokens):
    """The bundle's `LlmMetadata` proto: start/stop tokens, context length, generic model type."""
    from litert_lm_builder.runtime.proto import llm_metadata_pb2

    metadata = llm_metadata_pb2.LlmMetadata()
    metadata.start_token.token_ids.ids.append(int(start_token_id))
    for token in stop_token_ids:
        metadata.stop_tokens.add().token_ids.ids.append(int(token))
    metadata.max_num_tokens = int(max_num_tokens)
    metadata.llm_model_type.generic_model.SetInParent()
    return metadata


def build_bundle(tflite_bytes, tokenizer_json, path, *, start_token_id, stop_token_ids, max_num_tokens):
    """Write the `.litertlm` bundle: the decoder as PREFILL_DECODE model, the HF tokenizer, the LLM metadata.

    Uses litert-lm-builder's Python API (`litert_lm_builder.LitertLmFileBuilder`;
    the `litert-lm-builder` CLI wraps the same class). Returns `path`.
    """
    import litert_lm_builder
    from litert_lm_builder import litertlm_core

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = llm_metadata(start_token_id, stop_token_ids, max_num_tokens)
    with tempfile.TemporaryDirectory(prefix="zoo-litertlm-") as scratch:
        scratch = pathlib.Path(scratch)
        (scratch / "model.tflite").write_bytes(tflite_bytes)
        tokenizer_text = tokenizer_json if isinstance(tokenizer_json, str) else json.dumps(tokenizer_json)
        (scratch / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
        (scratch / "llm_metadata.pb").write_bytes(metadata.SerializeToString())
        builder = litert_lm_builder.LitertLmFileBuilder()
        builder.add_system_metadata(litert_lm_builder.Metadata(
            key="Authors", value="zoo", dtype=litert_lm_builder.DType.STRING))
        builder.add_llm_metadata(str(scratch / "llm_metadata.pb"))
        builder.add_tflite_model(str(scratch / "model.tflite"), litert_lm_builder.TfLiteModelType.PREFILL_DECODE)
        builder.add_hf_tokenizer(str(scratch / "tokenizer.json"))
        partial = path.with_name(path.name + ".partial")
        with litertlm_core.open_file(str(partial), "wb") as stream:
            builder.build(stream)
        partial.replace(path)
    return path
