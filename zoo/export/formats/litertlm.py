"""LiteRT-LM bundles for Google's on-device LLM engine: `litert_lm/model[.dynamic_int8].litertlm`.

The architecture's LiteRT-LM decoder graph (`zoo.export.litertlm_decoder`:
`prefill_<T>` + `decode`, per-layer KV caches updated in place), converted to
builtin ops only, packed by litert-lm-builder with the model's tokenizer as a
Hugging Face `tokenizer.json` and LLM metadata (start and stop token
`<|endoftext|>`, context length = the cache length). The bundle carries all
an app needs, so it has no sidecar. Validated in a child process on
LiteRT-LM's own engine: greedy output must equal Keras token for token for
float32; the int8-weight bundle's agreement is reported.
"""

from zoo.export import isolation, litertlm_decoder
from zoo.export.formats import litert
from zoo.runtime.sidecar import artifact_filename

NAME = "litertlm"
DIRECTORY = "litert_lm"
SUFFIX = ".litertlm"
TASKS = ("causal-lm",)
QUANTIZATIONS = ("dynamic_int8",)
RUNTIMES = ("litert_lm",)


def artifact_key(variant):
    return f"litert_lm {variant}"


def write(job, variant):
    backbone, cache_length = job.model.backbone, job.validation.cache_length
    conversion_model = job.scratch / "litertlm_saved_model"
    if not conversion_model.exists():
        litertlm_decoder.write_conversion_saved_model(backbone, conversion_model, cache_length)
    signature_keys = litertlm_decoder.signature_keys(cache_length)
    flatbuffer = litert.convert(conversion_model, None if variant == "float32" else variant,
                                signature_keys=signature_keys)
    tokenizer = job.model.preprocessor.tokenizer
    end = tokenizer.end_token_id
    path = job.staging / DIRECTORY / artifact_filename(variant, SUFFIX)
    litertlm_decoder.build_bundle(
        flatbuffer, litertlm_decoder.huggingface_tokenizer_json(tokenizer.vocabulary, tokenizer.merges), path,
        start_token_id=end, stop_token_ids=[end], max_num_tokens=cache_length,
    )
    artifact = {
        "format": NAME,
        "path": str(path.relative_to(job.staging)),
        "quantization": variant,
        "signatures": litert.file_signatures(flatbuffer),
        "ops": litert.op_names(flatbuffer),
        "custom_ops": [],
        "start_token_id": end,
        "stop_token_ids": [end],
        "max_num_tokens": cache_length,
        "bytes": path.stat().st_size,
    }
    return path, artifact


def run(job, path, variant):
    return isolation.run_in_child(path, job.task.runtime_inputs(job), RUNTIMES, job.scratch)
