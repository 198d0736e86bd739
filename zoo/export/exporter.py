"""`zoo.export.export`: write a model as a TF Serving version plus runtime files, each validated.

Layout of one version (TF Serving loads `<root>/<name>/<version>/` as is and
ignores the extra files):

    <root>/<name>/<version>/
        saved_model.pb, variables/, fingerprint.pb, assets/, assets.extra/
        litert/model.tflite (+ model.json sidecar), litert/model.<variant>.tflite (+ .json)
        onnx/model.onnx (+ model.json), onnx/model.dynamic_int8.onnx (+ .json)   classifiers
        export_report.json             parity of every artifact against Keras
        manifest.json

The loop knows no task: check the arguments -> look up the model's export
config (`tasks`) -> for each requested format (`formats.FORMATS`) and
variant: write, run, compare with Keras -> report + manifest -> publish
(`publish`: staging folder, atomic rename).
"""

import dataclasses
import json
import pathlib
import shutil
import time

from zoo.export import manifest, publish, tasks
from zoo.export.errors import ExportError, RuntimeCrash
from zoo.export.formats import FORMATS, QUANTIZATIONS, get_format
from zoo.runtime.sidecar import REFERENCE_VARIANT, sidecar_path

REPORT_FILENAME = "export_report.json"


@dataclasses.dataclass
class ExportResult:
    path: pathlib.Path
    name: str
    version: int
    report: dict
    task: object = dataclasses.field(repr=False, default=None)

    def format_table(self):
        lines = [self.task.format_table(self.report["parity"])]
        lines += [f"{artifact:<30}SKIPPED: {reason}" for artifact, reason in self.report["skipped"].items()]
        return "\n".join(lines)


@dataclasses.dataclass
class ExportJob:
    """One export in progress: what every format's `write` and `run` receive."""

    model: object
    name: str
    version: int
    task: object  # the model's export config
    validation: object  # the task's validation set (texts and labels, or prompts)
    staging: pathlib.Path
    scratch: pathlib.Path


def export(
    model,
    root="saved_models",
    name=None,
    version=None,
    formats=None,
    quantize=None,
    force=False,
    validation_data=None,
    calibration_texts=None,
    cache_length=None,
    validation_length=None,
):
    """Export a text classifier or causal LM and prove each artifact reproduces Keras.

    Args:
        model: a `TextClassifier` or GPT-2 `CausalLM`, a `.keras` file, a
            folder holding one, or a registered name trained into `saved_models/`.
        root: TF Serving model base path; the version goes to
            `<root>/<name>/<version>/`.
        name: defaults to the model's name.
        version: int >= 1; default is one more than the highest existing.
        formats: names from `zoo.export.FORMATS` ("saved_model", "tflite",
            "onnx"); default every format the model's task supports
            (causal LMs: no ONNX).
        quantize: variants besides float32, from `zoo.export.QUANTIZATIONS`;
            each format writes those it supports. Default: all three for
            classifiers, "dynamic_int8" (int8 weights) for causal LMs.
        force: replace an existing version.
        validation_data: classifiers: held-out `TextDataset` (or `(texts,
            labels)`, or texts alone) to validate on; default the validation
            split the model was trained against (from `train_report.json`
            beside a model file), else rt-polarity's seeded validation split.
            Causal LMs: prompts (default `causal_lm_export.DEFAULT_PROMPTS`).
        calibration_texts: training texts for full-int8 calibration; default
            from the same training split.
        cache_length: causal LMs: the LiteRT KV cache's length, the most
            tokens (prompt included) one generation can hold; default 256
            or the model's `max_sequence_length` if smaller.
        validation_length: causal LMs: `max_length` of the validation generations (default 48).

    Returns:
        `ExportResult` with the version path and the report.

    Example:
    >>> from zoo.export import export
    >>> result = export("saved_models/lstm_classifier/model.keras", root="/tmp/serving")
    >>> print(result.format_table())
    """
    from zoo.saving import check_folder, held_out_split, load_model

    started = time.perf_counter()
    model_path = None
    if isinstance(model, (str, pathlib.Path)):
        model_path, model = model, load_model(model)
    task = tasks.export_config_for(model)
    options = {key: value for key, value in
               {"cache_length": cache_length, "validation_length": validation_length}.items() if value is not None}
    task.check_model(model, options)
    plan = _plan(task, formats, quantize)
    name = publish.check_name(name or model.name)
    base = pathlib.Path(root) / name
    check_folder(base, "export folder")
    publish.choose_version(base, version, force)  # a bad or taken version fails before the data is read
    validation = task.validation_set(model, validation_data, calibration_texts,
                                     held_out_split(model_path) if model_path else None, **options)

    with publish.claimed_version(base, version, force) as version, \
            publish.staged_version(base, version, force) as (staging, scratch):
        job = ExportJob(model, name, version, task, validation, staging, scratch)
        parity, artifacts, skipped = {"keras": task.reference_figures(job)}, {}, {}
        for format_module, variant in plan:
            key = format_module.artifact_key(variant)
            try:
                artifact, figures = _write_and_validate(job, format_module, variant, key)
            except RuntimeCrash as crash:
                if variant == REFERENCE_VARIANT:
                    raise ExportError(f"{key}: {crash}") from None
                # A quantized variant that a runtime refuses is left out and reported, not shipped.
                skipped[key] = f"{crash.filename} not written: {crash}"
                continue
            artifacts[key], parity[key] = artifact, figures
        report = {
            "name": name,
            "version": version,
            "task": task.TASK,
            "validation_examples": task.validation_examples(job),
            "parity": parity,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (staging / REPORT_FILENAME).write_text(json.dumps(report, indent=2))
        described = manifest.build_manifest(job, artifacts, parity, publish.file_hashes(staging))
        if model_path is not None:  # the .keras file it came from, so `zoo verify` can check it too
            from zoo.runtime.verify import sha256
            from zoo.saving import model_file

            source = model_file(model_path).resolve()
            described["source"] = {"path": str(source), "sha256": sha256(source)}
        (staging / manifest.MANIFEST_FILENAME).write_text(json.dumps(described, indent=2, ensure_ascii=False))
    return ExportResult(base / str(version), name, version, report, task)


def _write_and_validate(job, format_module, variant, key):
    """Write one file, run it on every runtime it must work on, compare with Keras."""
    path, artifact = format_module.write(job, variant)
    try:
        if path != job.staging:
            job.task.check_sidecar_tokenizer(job, path)
        figures = job.task.compare(job, key, variant, format_module.run(job, path, variant))
    except RuntimeCrash as crash:
        crash.filename = path.name
        _remove(job, path)
        raise
    figures["bytes"] = artifact["bytes"]
    return artifact, figures


def _remove(job, path):
    if path == job.staging:
        return
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)
    if path.parent != job.staging and not any(path.parent.iterdir()):
        shutil.rmtree(path.parent)


def _plan(task, formats, quantize):
    """`[(format module, variant)]` in order, every request checked before any work."""
    supported = [name for name, module in FORMATS.items() if task.TASK in module.TASKS]
    formats = _choices("formats", task.DEFAULT_FORMATS if formats is None else formats, FORMATS)
    for name in formats:
        if name not in supported:
            raise ExportError(f"formats: {name!r} does not export {task.TASK} models; "
                              f"formats for {task.TASK}: {', '.join(supported)}")
    quantize = _choices("quantize", task.DEFAULT_QUANTIZATIONS if quantize is None else quantize, QUANTIZATIONS)
    for variant in quantize:
        if variant not in task.QUANTIZATIONS:
            raise ExportError(f"quantize: {task.TASK} models have no {variant!r} variant; "
                              f"expected any of {list(task.QUANTIZATIONS)}")
        if not any(variant in get_format(name).QUANTIZATIONS for name in formats):
            writers = [name for name in supported if variant in get_format(name).QUANTIZATIONS]
            raise ExportError(f"quantize: {variant!r} needs one of the formats {writers}")
    return [(get_format(name), variant) for name in formats
            for variant in (REFERENCE_VARIANT,) + tuple(q for q in quantize if q in get_format(name).QUANTIZATIONS)]


def _choices(field, values, allowed):
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ExportError(f"{field}: unknown {unknown}; expected any of {list(allowed)}")
    return tuple(dict.fromkeys(values))
