"""LiteRT-LM bundles for Google's on-device LLM engine: `litert_lm/model[.dynamic_int8].litertlm`.

LiteRT-LM (litert-lm 0.18.1) drives a `.tflite` file itself: it tokenizes,
chunks the prompt over the file's prefill signatures, owns the KV cache and
samples. The contract it expects, and this format writes from the
architecture recipe's cached step (`in_place`), for a decoder with `L`
layers and a cache of `C` rows (the context length, read by the engine from
dim 2 of the caches):

- signatures `decode` and `prefill_<T>` for each `T` in
  `prefill_lengths_for(C)` (the engine takes the longest prefill that fits
  the tokens left in the prompt and in the cache, so a short one ships too);
- inputs `tokens` int32 `[1, T]` (`T` = 1 for `decode`), `input_pos` int32
  `[T]` (each token's index in the sequence; consecutive from
  `input_pos[0]`), `kv_cache_k_<i>` / `kv_cache_v_<i>` for `i` in `0..L-1`;
- outputs: the full updated caches under the input names (the engine binds
  each cache input and output to one buffer, as it does on CPU), and for
  `decode` `logits` float32 `[1, 1, V]`. `prefill_<T>` has no logits: the
  engine never reads them (it runs the prompt's last token through
  `decode`), and for GPT-2 small they would add a `T x 768 x 50257` matmul to
  every chunk.

Only architectures whose cache is a KV cache the engine can own (the
recipe's `cache_update` "rows") are served. The bundle packs the converted
file, the tokenizer as a Hugging Face `tokenizer.json` and the LLM metadata
(start and stop token, context length = the cache length) with
litert-lm-builder's Python API; it carries all an app needs, so it has no
sidecar. Validated in a child process on LiteRT-LM's own engine: greedy
output must equal Keras token for token for float32; the int8-weight
bundle's agreement is reported.
"""

import json
import pathlib
import tempfile

import tensorflow as tf

from zoo import extras
from zoo.export import isolation
from zoo.export.errors import ExportError
from zoo.export.formats import litert
from zoo.export.graphs import Endpoint, Graph
from zoo.runtime import registry

NAME = "litert_lm"
DIRECTORY = "litert_lm"
SUFFIX = ".litertlm"
VARIANTS = {"dynamic_int8": "int8 weights, float activations"}
EXACT_VARIANTS = ("float32",)
RUNTIMES = ("litert_lm",)
# The bundler writes the file, the engine (its only runtime) validates it: zoo[litertlm].
NEEDS = ("litert_lm_builder", "litert_lm")
DECODE_SIGNATURE = "decode"
PREFILL_PREFIX = "prefill_"
TOKENS = "tokens"
INPUT_POS = "input_pos"


def serves(task, model):
    if SUFFIX not in registry.suffixes(task.name):
        return False
    if model is None:
        return True
    from zoo.export.architectures import recipe_for

    return recipe_for(model.backbone).cache_update == "rows"


def cache_names(num_layers):
    return [name for layer in range(num_layers) for name in (f"kv_cache_k_{layer}", f"kv_cache_v_{layer}")]


def signature_keys(cache_length):
    """The file's signatures, prefills first: `("prefill_8", "prefill_64", "decode")`."""
    return tuple(f"{PREFILL_PREFIX}{length}" for length in prefill_lengths_for(cache_length)) + (DECODE_SIGNATURE,)


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


def decoder_graph(model, cache_length):
    """The engine's decoder (module docstring) over the model's backbone, from its architecture recipe."""
    from zoo.export.architectures import recipe_for

    backbone, recipe = model.backbone, recipe_for(model.backbone)
    if recipe.cache_update != "rows":
        raise ExportError(f"{model.name}: LiteRT-LM's engine owns a KV cache; {type(backbone).__name__} has none")
    names = cache_names(len(recipe.cache_inputs(backbone)))
    shapes = dict(zip(names, recipe.cache_shapes(backbone, cache_length)))

    def step(inputs, logits):
        caches = [inputs[name] for name in names]
        hidden, updated = recipe.step(backbone, inputs[TOKENS], inputs[INPUT_POS][0], caches, in_place=True)
        outputs = dict(zip(names, updated))
        if logits:
            outputs["logits"] = recipe.logits(backbone, hidden)  # [1, 1, V]
        return outputs

    def signature(tokens):
        return [{TOKENS: tf.TensorSpec([1, tokens], tf.int32, name=TOKENS),
                 INPUT_POS: tf.TensorSpec([tokens], tf.int32, name=INPUT_POS),
                 **{name: tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes.items()}}]

    endpoints = {f"{PREFILL_PREFIX}{length}": Endpoint(lambda inputs: step(inputs, logits=False), signature(length))
                 for length in prefill_lengths_for(cache_length)}
    endpoints[DECODE_SIGNATURE] = Endpoint(lambda inputs: step(inputs, logits=True), signature(1))
    return Graph(endpoints=endpoints, tracked=[backbone])


def decoder_flatbuffer(model, variant, cache_length, scratch=None):
    """The bundle's builtins-only `.tflite` (bytes): the decoder graph converted for `variant`."""
    with tempfile.TemporaryDirectory(prefix="zoo-litert-lm-") as own_scratch:
        conversion = pathlib.Path(scratch or own_scratch) / "litert_lm_decoder"
        if not conversion.exists():
            decoder_graph(model, cache_length).write_saved_model(conversion)
        return litert.convert(conversion, None if variant == "float32" else variant,
                              signature_keys=signature_keys(cache_length))


def write(model, path, variant="float32", *, task=None, options=None, validation=None, name=None, version=None,
          scratch=None):
    """Write `model` as a `.litertlm` bundle at `path`: its decoder, tokenizer and LLM metadata."""
    from zoo.export.tasks import task_for

    task = task or task_for(model)
    options = options if options is not None else task.options(model)
    if variant != "float32" and variant not in VARIANTS:
        raise ExportError(f"variant: {NAME} has no {variant!r} variant; expected any of {['float32', *VARIANTS]}")
    cache_length = options["cache_length"]
    flatbuffer = decoder_flatbuffer(model, variant, cache_length, scratch)
    description = task.runtime_description(model, options)
    generation, tokenizer = description["generation"], description["tokenizer"]
    start, stop = generation["start_token_id"], [generation["end_token_id"]]
    path = pathlib.Path(path)
    build_bundle(flatbuffer, huggingface_tokenizer_json(tokenizer["vocabulary"], tokenizer["merges"]), path,
                 start_token_id=start, stop_token_ids=stop, max_num_tokens=cache_length)
    return {
        "format": NAME,
        "path": path.name,
        "quantization": variant,
        "signatures": litert.file_signatures(flatbuffer),
        "ops": litert.op_names(flatbuffer),
        "custom_ops": [],
        "start_token_id": start,
        "stop_token_ids": stop,
        "max_num_tokens": cache_length,
        "bytes": path.stat().st_size,
    }


def optional_runtimes(path):
    return {}


def run(path, variant, task, validation, scratch, optional_runtimes=()):
    return isolation.run_in_child(path, task.probe_inputs(validation), RUNTIMES, scratch)


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
    extras.require("litert_lm_builder", "the litert_lm format")
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
    litert_lm_builder = extras.require("litert_lm_builder", "the litert_lm format")
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
