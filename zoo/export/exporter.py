"""`zoo.export`: write a model as a TF Serving version plus LiteRT files, validated.

Layout of one version (TF Serving loads `<root>/<name>/<version>/` as is and
ignores the extra files):

    <root>/<name>/<version>/
        saved_model.pb, variables/, fingerprint.pb
        assets/                        the tokenizer's vocabulary
        assets.extra/tf_serving_warmup_requests
        litert/model.tflite            float32, int32 token ids in, builtin ops only
        litert/model.json              sidecar: tokenizer, labels or KV cache, tensors
        litert/model.<quantization>.tflite (+ .json)
        export_report.json             parity of every artifact against Keras
        manifest.json

Text classifiers: `serving_default` on raw strings + `predict_token_ids`; one
LiteRT signature. Causal LMs (`zoo.export.causal_lm`): `generate` and
`logits`; LiteRT `prefill` + `decode` with a KV cache, checked token for token
against Keras's greedy `generate`.

The version is assembled in a hidden temporary folder beside it (TF Serving
only picks up integer folder names) and renamed into place only after every
artifact passed validation, so an interrupted or failed export leaves nothing.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from zoo.export import causal_lm, fused_rnn, litert, litert_probe, manifest, saved_model, validate
from zoo.export.errors import ExportError
from zoo.lite import SIDECAR_FORMAT, Generator, sidecar_path
from zoo.preprocessing.reference import ReferenceWordTokenizer

FORMATS = ("saved_model", "tflite")
REPORT_FILENAME = "export_report.json"
LITERT_DIRNAME = "litert"
CALIBRATION_EXAMPLES = 200
# Prompts a causal LM is validated on when none are given.
DEFAULT_PROMPTS = ("ROMEO:", "The king", "First Citizen:\nWe are", "O, what a", "And so", "I will not")


@dataclasses.dataclass
class ExportResult:
    path: pathlib.Path
    name: str
    version: int
    report: dict

    def format_table(self):
        lines = [validate.format_table(self.report["parity"])]
        lines += [f"{artifact:<34}SKIPPED: {reason}" for artifact, reason in self.report["skipped"].items()]
        return "\n".join(lines)


def export(
    model,
    root="saved_models",
    name=None,
    version=None,
    formats=FORMATS,
    quantize=None,
    force=False,
    validation_data=None,
    calibration_texts=None,
    cache_length=None,
    validation_length=48,
):
    """Export a text classifier or causal LM and prove each artifact reproduces Keras.

    Args:
        model: a `TextClassifier` or GPT-2 `CausalLM`, a `.keras` file, a
            folder holding one, or a registered name trained into `saved_models/`.
        root: TF Serving model base path; the version goes to
            `<root>/<name>/<version>/`.
        name: defaults to the model's name.
        version: int >= 1; default is one more than the highest existing.
        formats: any of "saved_model", "tflite".
        quantize: extra LiteRT variants: "float16", "dynamic_int8", "int8"
            (classifiers; default all three) or "float16", "dynamic_int8"
            (causal LMs; default "dynamic_int8", int8 weights).
        force: replace an existing version.
        validation_data: classifiers: held-out `TextDataset` (or `(texts,
            labels)`, or texts alone) to validate on; default the validation
            split the model was trained against (from `train_report.json`
            beside a model file), else rt-polarity's seeded validation split.
            Causal LMs: prompts (default `DEFAULT_PROMPTS`).
        calibration_texts: training texts for full-int8 calibration; default
            from the same training split.
        cache_length: causal LMs: the LiteRT KV cache's length, the most
            tokens (prompt included) one generation can hold; default 256
            or the model's `max_sequence_length` if smaller.
        validation_length: causal LMs: `max_length` of the validation
            generations.

    Returns:
        `ExportResult` with the version path and the report.

    Example:
    >>> result = zoo.export("saved_models/lstm_classifier/model.keras", root="/tmp/serving")
    >>> print(result.format_table())
    """
    from zoo.training import held_out_split, load_classifier

    started = time.perf_counter()
    model_path = None
    if not hasattr(model, "preprocessor"):
        model_path = model
        model = load_classifier(model)
    is_lm = causal_lm.is_causal_lm(model)
    formats = _check_choices("formats", formats, FORMATS)
    if quantize is None:
        quantize = ("dynamic_int8",) if is_lm else litert.QUANTIZATIONS
    quantize = _check_choices("quantize", quantize, causal_lm.QUANTIZATIONS if is_lm else litert.QUANTIZATIONS)
    if quantize and "tflite" not in formats:
        raise ExportError("quantize needs the 'tflite' format")
    if getattr(model, "preprocessor", None) is None:
        raise ExportError(f"{model.name}: the model has no preprocessor (tokenizer) attached; zoo exports take text")
    if not is_lm and not model.preprocessor.tokenizer.is_adapted:
        raise ExportError(f"{model.name}: the tokenizer has no vocabulary yet; adapt and train the model first")
    name = name or model.name
    if not name or os.sep in name or name.startswith("."):
        raise ExportError(f"name must be a plain folder name, got {name!r}")

    if is_lm:
        prompts = _validation_prompts(validation_data)
        cache_length = _cache_length(model, cache_length)
    else:
        texts, labels, calibration = _validation_examples(
            model, validation_data, calibration_texts, held_out_split(model_path) if model_path else None
        )
    base = pathlib.Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    version = _choose_version(base, version, force)
    final = base / str(version)

    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="zoo-export-"))
    try:
        if is_lm:
            artifacts, parity, skipped = _export_causal_lm(
                model, name, staging, scratch, formats, quantize, prompts, cache_length,
                min(validation_length, cache_length),
            )
            examples = len(prompts)
        else:
            artifacts, parity, skipped = _export_classifier(
                model, name, staging, scratch, formats, quantize, texts, labels, calibration
            )
            examples = len(texts)
        report = {
            "name": name,
            "version": version,
            "validation_examples": examples,
            "float32_tolerance": validate.FLOAT32_TOLERANCE,
            "parity": parity,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (staging / REPORT_FILENAME).write_text(json.dumps(report, indent=2))
        files = _file_hashes(staging)
        (staging / manifest.MANIFEST_FILENAME).write_text(
            json.dumps(
                manifest.build_manifest(
                    name=name, version=version, model=model, artifacts=artifacts, validation=parity, files=files,
                ),
                indent=2,
                ensure_ascii=False,
            )
        )
        _move_into_place(staging, final, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(final, name, version, report)


def _export_classifier(model, name, staging, scratch, formats, quantize, texts, labels, calibration):
    keras_probabilities = np.asarray(model.predict(tf.constant(texts), batch_size=256, verbose=0))
    artifacts, parity = {}, {"keras": validate.compare(keras_probabilities, keras_probabilities, labels)}
    skipped = {}
    if "saved_model" in formats:
        artifacts["saved_model"], parity["saved_model (text)"], parity["saved_model (token_ids)"] = (
            _export_saved_model(model, name, staging, scratch, texts, labels, keras_probabilities)
        )
    if "tflite" in formats:
        for quantization in (None,) + tuple(quantize):
            key = f"litert {quantization or 'float32'}"
            artifact, figures = _export_litert(
                model, staging / LITERT_DIRNAME, scratch, quantization, calibration, texts, labels,
                keras_probabilities,
            )
            if artifact is None:
                skipped[key] = figures["skipped"]
            else:
                artifacts[key], parity[key] = artifact, figures
    return artifacts, parity, skipped


def _export_saved_model(model, name, staging, scratch, texts, labels, keras_probabilities):
    vocabulary_file = scratch / "vocabulary" / "vocabulary.txt"
    vocabulary_file.parent.mkdir()
    vocabulary_file.write_text("\n".join(model.preprocessor.tokenizer.vocabulary), encoding="utf-8")
    saved_model.write_saved_model(model, staging, vocabulary_file, warmup_texts=texts[:8], model_name=name)
    vocabulary_file.unlink()  # the SavedModel must read its own asset copy

    loaded = tf.saved_model.load(str(staging))
    by_text = _call_in_batches(loaded.signatures[saved_model.TEXT_SIGNATURE], "text", tf.constant(texts))
    token_ids = model.preprocessor.reference().encode(texts)
    by_ids = _call_in_batches(
        loaded.signatures[saved_model.TOKEN_IDS_SIGNATURE], "token_ids", tf.constant(token_ids)
    )
    text_figures = validate.compare(keras_probabilities, by_text, labels)
    ids_figures = validate.compare(keras_probabilities, by_ids, labels)
    validate.require_float32_parity("SavedModel serving_default (raw strings)", text_figures)
    validate.require_float32_parity("SavedModel predict_token_ids", ids_figures)
    size = sum(path.stat().st_size for path in staging.rglob("*") if path.is_file())
    text_figures["bytes"] = ids_figures["bytes"] = size
    artifact = {
        "format": "saved_model",
        "path": ".",
        "signatures": {
            saved_model.TEXT_SIGNATURE: _signature_spec(loaded.signatures[saved_model.TEXT_SIGNATURE]),
            saved_model.TOKEN_IDS_SIGNATURE: _signature_spec(loaded.signatures[saved_model.TOKEN_IDS_SIGNATURE]),
        },
        "assets": ["assets/vocabulary.txt", f"assets.extra/{saved_model.WARMUP_FILENAME}"],
        "bytes": size,
    }
    return artifact, text_figures, ids_figures


def _export_litert(model, directory, scratch, quantization, calibration, texts, labels, keras_probabilities):
    # LSTMs become TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM (~4x faster
    # than the WHILE loop) for float files. Not for int8 weights: the fused
    # op's reset row (-3e4) would ruin the kernel's quantization scale.
    fused = quantization in (None, "float16") and fused_rnn.can_fuse(model)
    # Other recurrent layers are unrolled over the fixed sequence length:
    # TFLite has no fused GRU and the converter emits no fused SimpleRNN, so
    # the other choice is a WHILE loop, measured 4x slower for SimpleRNN and
    # ~10% for GRU. Full-int8 quantization needs the unrolled ops in any case.
    conversion_model = scratch / ("litert_saved_model_fused" if fused else "litert_saved_model_unrolled")
    if not conversion_model.exists():
        if fused:
            fused_rnn.write_fused_conversion_saved_model(model, conversion_model)
        else:
            litert.write_conversion_saved_model(model, conversion_model, unroll_rnns=True)
    reference = model.preprocessor.reference()
    calibration_ids = litert.with_full_windows(reference.encode(calibration)) if quantization == "int8" else None
    flatbuffer = litert.convert(conversion_model, quantization, calibration_ids,
                                float_ops=getattr(model.backbone, "LITERT_INT8_FLOAT_OPS", ()))

    directory.mkdir(exist_ok=True)
    path = directory / ("model.tflite" if quantization is None else f"model.{quantization}.tflite")
    path.write_bytes(flatbuffer)
    input_spec = {"name": litert.INPUT_NAME, "dtype": "int32", "shape": [1, model.sequence_length]}
    output_spec = {"name": litert.OUTPUT_NAME, "dtype": "float32", "shape": [1, model.num_classes]}
    sidecar = {
        "format": SIDECAR_FORMAT,
        "model": model.name,
        "quantization": quantization or "float32",
        "signature": litert.SIGNATURE_KEY,
        "input": input_spec,
        "output": output_spec,
        "labels": list(model.class_names),
        "custom_ops": [],
        "tokenizer": reference.to_dict(),
    }
    sidecar_path(path).write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")

    # Validate the file as a user runs it: the pure-Python reference
    # tokenizer reading the sidecar, the stock interpreter with no delegates
    # and with its default XNNPACK delegate, in a separate process (a
    # crashing kernel must not kill the export).
    token_ids = ReferenceWordTokenizer.from_json(sidecar_path(path)).encode(texts)
    try:
        by_runtime = _run_isolated(path, token_ids, scratch)
    except _InterpreterCrash as crash:
        path.unlink()
        sidecar_path(path).unlink()
        if quantization is None:
            raise ExportError(f"LiteRT {path.name}: {crash}") from None
        # A quantized variant that fails is left out and reported, not shipped.
        return None, {"skipped": f"{path.name} not written: {crash}", "bytes": None}
    figures = validate.compare(keras_probabilities, by_runtime["builtin"], labels)
    figures["xnnpack"] = validate.compare(keras_probabilities, by_runtime["xnnpack"], labels)
    figures["bytes"] = len(flatbuffer)
    for runtime, runtime_figures in (("", figures), (" (XNNPACK)", figures["xnnpack"])):
        if quantization is None:
            validate.require_float32_parity(f"LiteRT {path.name}{runtime}", runtime_figures)
        elif runtime_figures["has_nan"]:
            raise ExportError(f"LiteRT {path.name}{runtime}: NaN in the outputs on validation examples")
    artifact = {
        "format": "tflite",
        "path": str(path.relative_to(directory.parent)),
        "sidecar": str(sidecar_path(path).relative_to(directory.parent)),
        "quantization": quantization or "float32",
        "inputs": [input_spec],
        "outputs": [output_spec],
        "signature": litert.SIGNATURE_KEY,
        "ops": litert.op_names(flatbuffer),
        "custom_ops": [],
        "bytes": len(flatbuffer),
    }
    return artifact, figures


def _export_causal_lm(model, name, staging, scratch, formats, quantize, prompts, cache_length, max_length):
    """SavedModel (`generate`, `logits`) and LiteRT prefill/decode files, each checked against Keras."""
    reference = causal_lm.keras_greedy_token_ids(model, prompts, max_length)
    generated = sum(len(ids) for ids in reference)
    artifacts, skipped = {}, {}
    parity = {"keras": {"prompts": len(prompts), "max_length": max_length, "generated_tokens": generated}}
    prompt_ids = [causal_lm.prompt_token_ids(model, prompt) for prompt in prompts]
    keras_logits = [np.asarray(causal_lm.token_logits(model.backbone, tf.constant([ids], tf.int32)))[0, -1]
                    for ids in prompt_ids]
    if "saved_model" in formats:
        causal_lm.write_saved_model(model, staging, warmup_prompts=prompts[:4], model_name=name)
        loaded = tf.saved_model.load(str(staging))
        generate = loaded.signatures[causal_lm.GENERATE_SIGNATURE]
        tokens = []
        for prompt, ids in zip(prompts, prompt_ids):
            row = generate(prompts=tf.constant([prompt]), max_length=tf.constant(max_length, tf.int32))["token_ids"]
            row = row.numpy()[0]
            tokens.append([int(token) for token in row[len(ids):] if token >= 0])
        figures = _token_agreement(reference, tokens)
        logits_signature = loaded.signatures[causal_lm.LOGITS_SIGNATURE]
        figures["logits_max_abs_diff"] = max(
            float(np.abs(logits_signature(token_ids=tf.constant([ids], tf.int32))["logits"].numpy()[0, -1]
                         - expected).max())
            for ids, expected in zip(prompt_ids, keras_logits)
        )
        _require_identical_tokens("SavedModel generate", figures, prompts, reference, tokens)
        validate.require_float32_parity("SavedModel logits", {"max_abs_diff": figures["logits_max_abs_diff"],
                                                              "has_nan": False})
        figures["bytes"] = sum(path.stat().st_size for path in staging.rglob("*") if path.is_file())
        parity["saved_model"] = figures
        artifacts["saved_model"] = {
            "format": "saved_model",
            "path": ".",
            "signatures": {key: _signature_spec(loaded.signatures[key])
                           for key in (causal_lm.GENERATE_SIGNATURE, causal_lm.LOGITS_SIGNATURE)},
            "custom_ops": ["RegexSplitWithOffsets (tensorflow-text; linked into TF Serving's model server)"],
            "bytes": figures["bytes"],
        }
    if "tflite" in formats:
        conversion_model = causal_lm.write_conversion_saved_model(model, scratch / "litert_saved_model", cache_length)
        directory = staging / LITERT_DIRNAME
        directory.mkdir(exist_ok=True)
        for quantization in (None,) + tuple(quantize):
            key = f"litert {quantization or 'float32'}"
            path = directory / ("model.tflite" if quantization is None else f"model.{quantization}.tflite")
            flatbuffer, sidecar = causal_lm.write_litert_file(model, conversion_model, path, quantization, cache_length)
            # As a user runs it: the sidecar's pure-Python BPE, the stock
            # interpreter with no delegates, zoo.lite's loop.
            generator = Generator(path, delegates=False)
            tokens = [generator.generate_token_ids(generator.prompt_token_ids(prompt), max_length)
                      for prompt in prompts]
            figures = _token_agreement(reference, tokens)
            # And under LiteRT's default XNNPACK delegate, as an app runs it:
            # it must run; its tokens are reported (its float sums are ordered
            # differently, so a near-tie may resolve the other way).
            try:
                delegated = Generator(path)
                figures["xnnpack"] = _token_agreement(
                    reference, [delegated.generate_token_ids(delegated.prompt_token_ids(prompt), max_length)
                                for prompt in prompts])
            except RuntimeError as error:
                reason = f"{path.name}: the LiteRT xnnpack runtime failed: {litert_probe.error_message(error)}"
                if quantization is None:
                    raise ExportError(f"LiteRT {reason}") from None
                path.unlink()
                sidecar_path(path).unlink()
                skipped[key] = f"{path.name} not written: {reason}"
                continue
            figures["prefill_logits_max_abs_diff"] = max(
                float(np.abs(generator.prefill(ids)["logits"][0] - expected).max())
                for ids, expected in zip(prompt_ids, keras_logits)
            )
            figures["bytes"] = len(flatbuffer)
            if quantization is None:
                _require_identical_tokens(f"LiteRT {path.name}", figures, prompts, reference, tokens)
            parity[key] = figures
            artifacts[key] = {
                "format": "tflite",
                "path": str(path.relative_to(staging)),
                "sidecar": str(sidecar_path(path).relative_to(staging)),
                "quantization": quantization or "float32",
                "signatures": sidecar["signatures"],
                "inputs": sidecar["inputs"],
                "outputs": sidecar["outputs"],
                "ops": litert.op_names(flatbuffer),
                "custom_ops": [],
                "bytes": len(flatbuffer),
            }
    return artifacts, parity, skipped


def _token_agreement(reference, tokens):
    """Exact sequences, and the share of reference tokens matched before the first divergence."""
    matched = 0
    for expected, got in zip(reference, tokens):
        for a, b in zip(expected, got):
            if a != b:
                break
            matched += 1
    total = sum(len(ids) for ids in reference)
    return {
        "prompts": len(reference),
        "identical_sequences": sum(a == b for a, b in zip(reference, tokens)) / max(1, len(reference)),
        "token_agreement": matched / max(1, total),
        "generated_tokens": sum(len(ids) for ids in tokens),
    }


def _require_identical_tokens(artifact, figures, prompts, reference, tokens):
    if figures["identical_sequences"] == 1.0:
        return
    index = next(i for i, (a, b) in enumerate(zip(reference, tokens)) if a != b)
    step = next((j for j, (a, b) in enumerate(zip(reference[index], tokens[index])) if a != b),
                min(len(reference[index]), len(tokens[index])))
    raise ExportError(
        f"{artifact}: greedy generation differs from Keras for prompt {prompts[index]!r} at new token {step} "
        f"(Keras {reference[index][step:step + 3]}, artifact {tokens[index][step:step + 3]})"
    )


def _validation_prompts(validation_data):
    if validation_data is None:
        return list(DEFAULT_PROMPTS)
    prompts = [validation_data] if isinstance(validation_data, str) else list(validation_data)
    if not prompts or not all(isinstance(prompt, str) for prompt in prompts):
        raise ExportError("validation_data for a causal LM must be a list of prompt strings")
    return prompts


def _cache_length(model, cache_length):
    limit = model.backbone.max_sequence_length
    if cache_length is None:
        return min(256, limit)
    if isinstance(cache_length, bool) or not isinstance(cache_length, int) or not 2 <= cache_length <= limit:
        raise ExportError(f"cache_length must be an integer from 2 to the model's max_sequence_length {limit}, "
                          f"got {cache_length!r}")
    return cache_length


class _InterpreterCrash(Exception):
    pass


def _run_isolated(path, token_ids, scratch):
    """`{runtime: probabilities}` from `litert_probe.py` in a child process (`litert_probe.RUNTIMES`)."""
    ids_file, out_file = scratch / "probe_ids.npy", scratch / "probe_out.npz"
    np.save(ids_file, token_ids)
    out_file.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, str(pathlib.Path(litert_probe.__file__)), str(path), str(ids_file), str(out_file),
         litert.SIGNATURE_KEY, litert.INPUT_NAME, litert.OUTPUT_NAME],
        capture_output=True, text=True,
    )
    last = next((line for line in reversed(completed.stderr.splitlines()) if line.strip()), "")
    if completed.returncode == litert_probe.RUNTIME_FAILED:
        raise _InterpreterCrash(f"the LiteRT {last[:300]} (on validation inputs)")
    if completed.returncode != 0:
        how = (f"signal {signal.Signals(-completed.returncode).name}" if completed.returncode < 0
               else f"exit status {completed.returncode}")
        raise _InterpreterCrash(f"the LiteRT interpreter crashed ({how}) on validation inputs: {last[:200]}")
    with np.load(out_file) as outputs:
        return {runtime: outputs[runtime] for runtime in litert_probe.RUNTIMES}


def _validation_examples(model, validation_data, calibration_texts, trained_split):
    from zoo.data import TextDataset, load_texts

    train = None
    if validation_data is None:
        if trained_split is not None:
            train, validation_data = trained_split
        else:
            dataset = load_texts()
            if list(dataset.class_names) != list(model.class_names):
                raise ExportError(
                    f"validation_data is required: the model's classes {list(model.class_names)} are not "
                    f"the default dataset's {list(dataset.class_names)}"
                )
            train, validation_data = dataset.split()
    if isinstance(validation_data, TextDataset):
        texts, labels = list(validation_data.texts), np.asarray(validation_data.labels)
    elif isinstance(validation_data, tuple) and len(validation_data) == 2:
        texts, labels = list(validation_data[0]), np.asarray(validation_data[1])
    else:
        texts, labels = list(validation_data), None
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ExportError("validation_data must hold at least one text, and only str texts")
    if calibration_texts is None:
        # Calibrate on training text when we know it; else on the validation
        # texts (their labels are never used for calibration).
        calibration_texts = train.texts if train is not None else texts
    order = np.random.default_rng(0).permutation(len(calibration_texts))[:CALIBRATION_EXAMPLES]
    return texts, labels, [calibration_texts[i] for i in order]


def _choose_version(base, version, force):
    existing = sorted(int(path.name) for path in base.iterdir() if path.name.isdigit())
    if version is None:
        return (existing[-1] + 1) if existing else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be an integer >= 1, got {version!r}")
    if version in existing and not force:
        raise ExportError(f"{base / str(version)} already exists; choose another version or pass force=True (--force)")
    return version


def _move_into_place(staging, final, force):
    if final.exists():
        if not force:
            raise ExportError(f"{final} appeared while exporting; not overwriting it")
        # Swap with two renames so a reader never sees a half version.
        retired = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, retired)
        os.rename(staging, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, final)


def _call_in_batches(signature, input_name, inputs, batch_size=256):
    outputs = [
        signature(**{input_name: inputs[start : start + batch_size]})["probabilities"].numpy()
        for start in range(0, int(inputs.shape[0]), batch_size)
    ]
    return np.concatenate(outputs)


def _signature_spec(concrete_function):
    def describe(spec):
        return {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}

    inputs = concrete_function.structured_input_signature[1]
    outputs = concrete_function.structured_outputs
    return {
        "inputs": {key: describe(spec) for key, spec in inputs.items()},
        "outputs": {key: describe(tensor) for key, tensor in outputs.items()},
    }


def _check_choices(field, values, allowed):
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ExportError(f"{field}: unknown {unknown}; expected any of {list(allowed)}")
    return tuple(dict.fromkeys(values))


def _file_hashes(directory):
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
