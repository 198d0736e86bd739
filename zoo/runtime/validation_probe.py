"""Run an exported file on validation inputs in its own process.

    python -m zoo.runtime.validation_probe MODEL INPUTS.npz OUTPUTS.npz RUNTIME [RUNTIME ...]

A faulty kernel in a quantized file can abort the engine (a C++ CHECK, not a
Python exception), which would take the exporting process down with it.
`zoo.export` runs every LiteRT and ONNX file here instead, once per runtime
(`backends.RUNTIMES`), so such a file is reported and left out, never
written as if it worked. It imports zoo.runtime only (no TensorFlow), so it
starts fast, and it runs the files exactly as an app would.

Inputs by task (the sidecar says which):
- text-classification: `token_ids` `[n, sequence_length]` (and `texts`, for
  runtime "mediapipe", which tokenizes itself) -> `<runtime>/probabilities`
  `[n, num_classes]`.
- causal-lm: `prompt_ids` (flat) + `prompt_lengths`, `max_length` ->
  `<runtime>/tokens` (flat) + `<runtime>/token_lengths` (greedy, new tokens
  only) and `<runtime>/prefill_logits` `[prompts, vocabulary_size]`; on
  runtime "litert_lm" (a `.litertlm` bundle, no sidecar) the engine
  tokenizes `prompts` itself and hands out no logits.

A file that fails on a runtime ends the run with exit status
`RUNTIME_FAILED`, the message (naming the runtime) on the last stderr line.
"""

import pathlib
import sys

import numpy as np

from zoo.runtime import backends
from zoo.runtime.sidecar import read_sidecar

RUNTIME_FAILED = 3


def classify(model_path, runtime, inputs):
    if runtime == "mediapipe":
        # MediaPipe Tasks' TextClassifier, as an app runs it: raw text in, its own tokenizer.
        from zoo.runtime.mediapipe_runner import MediaPipeTextClassifier

        return {"probabilities": MediaPipeTextClassifier(model_path).scores([str(t) for t in inputs["texts"]])}
    from zoo.runtime.text_classifier import TextClassifierRunner

    runner = TextClassifierRunner(model_path, delegates=runtime != "builtin")
    return {"probabilities": runner.predict_token_ids(inputs["token_ids"])}


def generate(model_path, runtime, inputs):
    if runtime == "litert_lm":
        return generate_with_litert_lm(model_path, inputs)
    from zoo.runtime.generator import Generator

    generator = Generator(model_path, delegates=runtime != "builtin")
    prompts = np.split(inputs["prompt_ids"], np.cumsum(inputs["prompt_lengths"])[:-1])
    tokens = [generator.generate_token_ids(ids.tolist(), int(inputs["max_length"])) for ids in prompts]
    logits = [generator.prefill(ids.tolist())["logits"][0] for ids in prompts]
    return {"tokens": np.array([t for row in tokens for t in row], np.int32),
            "token_lengths": np.array([len(row) for row in tokens], np.int32),
            "prefill_logits": np.stack(logits)}


def generate_with_litert_lm(model_path, inputs):
    """Google's LiteRT-LM engine on a `.litertlm` bundle: its tokenizer, its prefill/decode loop, greedy."""
    from zoo.runtime.litertlm_runner import LiteRTLMGenerator

    prompt_lengths, max_length = inputs["prompt_lengths"], int(inputs["max_length"])
    tokens, exact, texts = [], [], []
    with LiteRTLMGenerator(model_path) as generator:
        for prompt, length in zip(inputs["prompts"], prompt_lengths):
            tokens.append(generator.generate_token_ids(str(prompt), max_new_tokens=max_length - int(length)))
            exact.append(generator.last_run.get("exact_ids", True))
            # The engine streams text only; where ids cannot be recovered exactly, the text is what it made.
            texts.append(generator.last_run.get("text", ""))
    return {"tokens": np.array([t for row in tokens for t in row], np.int32),
            "token_lengths": np.array([len(row) for row in tokens], np.int32),
            "exact_ids": np.array(exact, bool), "texts": np.array(texts, dtype=str)}


TASK_RUNS = {"text-classification": classify, "causal-lm": generate}
# Files that carry everything themselves and have no sidecar.
SELF_CONTAINED = {".litertlm": "causal-lm"}


def main(model_path, inputs_file, outputs_file, *runtimes):
    suffix = pathlib.Path(model_path).suffix
    task = SELF_CONTAINED[suffix] if suffix in SELF_CONTAINED else read_sidecar(model_path)["task"]
    with np.load(inputs_file) as loaded:
        inputs = dict(loaded)
    outputs = {}
    for runtime in runtimes:
        try:
            results = TASK_RUNS[task](model_path, runtime, inputs)
        except (RuntimeError, ValueError) as error:
            print(f"{runtime} runtime failed: {backends.error_message(error)}", file=sys.stderr)
            sys.exit(RUNTIME_FAILED)
        outputs.update({f"{runtime}/{key}": value for key, value in results.items()})
    np.savez(outputs_file, **outputs)


if __name__ == "__main__":
    main(*sys.argv[1:])
