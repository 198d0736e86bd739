"""`zoo.export.export`: write a model as a TF Serving version plus runtime files, each validated.

Layout of one version (TF Serving loads `<root>/<name>/<version>/` as is and
ignores the extra files):

    <root>/<name>/<version>/
        saved_model.pb, variables/, fingerprint.pb, assets/, assets.extra/
        litert/model.tflite (+ model.json sidecar), litert/model.<variant>.tflite (+ .json)
        onnx/model.onnx (+ model.json), onnx/model.dynamic_int8.onnx (+ .json)   classifiers
        litert_lm/model.litertlm, litert_lm/model.dynamic_int8.litertlm          causal LMs
        export_report.json             parity of every artifact against Keras
        manifest.json

The loop knows no task, architecture or format by name: look up the model's
export task (`tasks`) -> plan the (format, variant) pairs the formats serve
(`formats.FORMATS`) -> for each: the format writes it, runs it, the task
compares it with Keras -> report + manifest -> publish (`publish`: staging
folder, atomic rename).
"""

import dataclasses
import json
import pathlib
import shutil
import time

from zoo import extras
from zoo.export import manifest, publish
from zoo.export.errors import ExportError, RuntimeCrash
from zoo.export.formats import FORMATS, artifact_key, get_format, relative_path
from zoo.export.tasks import task_for
from zoo.runtime.sidecar import REFERENCE_VARIANT, sidecar_path

REPORT_FILENAME = "export_report.json"
# Where an export changes what is on disk, in order (`zoo.saving.reached`): files in the staging folder
# (after each artifact is written and validated, the report, the manifest), then the version published.
WRITE_POINTS = ("export artifact", "export report", "export manifest", "export published")


@dataclasses.dataclass
class ExportResult:
    path: pathlib.Path
    name: str
    version: int
    report: dict
    task: object = dataclasses.field(repr=False, default=None)

    def format_table(self):
        skipped = dict(self.report["skipped"])
        skipped.update({f"{artifact} on {runtime}": reason
                        for artifact, runtimes in self.report.get("runtimes_skipped", {}).items()
                        for runtime, reason in runtimes.items()})
        width = max([30, *(len(label) + 2 for label in skipped)])
        lines = [self.task.format_table(self.report["parity"])]
        lines += [f"{label:<{width}}SKIPPED: {reason}" for label, reason in skipped.items()]
        return "\n".join(lines)


def export(
    model,
    root="saved_models",
    name=None,
    version=None,
    formats=None,
    variants=None,
    force=False,
    validation_data=None,
    calibration_texts=None,
    **task_options,
):
    """Export a model and prove each artifact reproduces Keras.

    Args:
        model: a model zoo exports (a `TextClassifier`, a keras-hub
            `CausalLM`, ...), a `.keras` file, a folder holding one, or a
            registered name trained into `saved_models/`.
        root: TF Serving model base path; the version goes to
            `<root>/<name>/<version>/`.
        name: defaults to the model's name.
        version: int >= 1; default is one more than the highest existing.
        formats: names from `zoo.export.FORMATS` ("saved_model", "litert",
            "onnx", "litert_lm"); default the model's task's formats that
            serve it and whose extra is installed (the others are reported
            in `skipped`). A format named here whose extra is missing raises
            `zoo.extras.MissingExtraError` before any work.
        variants: variants besides float32 (each format writes those it
            has: `FORMATS[name].VARIANTS`); default the task's.
        force: replace an existing version.
        validation_data: classifiers: held-out `TextDataset` (or `(texts,
            labels)`, or texts alone) to validate on; default the validation
            split the model was trained against (from the training report
            inside a model file, refused when its data file changed since),
            else rt-polarity's seeded validation split.
            Causal LMs: prompts (default `tasks.causal_lm.DEFAULT_PROMPTS`).
        calibration_texts: training texts for full-int8 calibration; default
            from the same training split.
        **task_options: the task's own options, e.g. causal LMs'
            `cache_length` (the most tokens one LiteRT generation holds;
            default 256 or the model's context if smaller) and
            `validation_length` (`max_length` of the validation generations).

    Every file is validated on each runtime it must work on; an optional
    runtime that is not installed (MediaPipe, for a classifier's LiteRT
    files) is named, with its extra, in the report's `runtimes_skipped`.

    Returns:
        `ExportResult` with the version path and the report.

    Example:
    >>> from zoo.export import export
    >>> result = export("saved_models/lstm_classifier/model.keras", root="/tmp/serving")
    >>> print(result.format_table())
    """
    from zoo.saving import check_folder, held_out_split, load_model, reached

    check_extras(formats)
    started = time.perf_counter()
    model_path = None
    if isinstance(model, (str, pathlib.Path)):
        model_path, model = model, load_model(model)
    task = task_for(model)
    options = task.options(model, **{key: value for key, value in task_options.items() if value is not None})
    task.check_model(model)
    plan, skipped_formats = _plan(task, model, formats, variants)
    name = publish.check_name(name or model.name)
    base = pathlib.Path(root) / name
    check_folder(base, "export folder")
    publish.choose_version(base, version, force)  # a bad or taken version fails before the data is read
    validation = task.validation_set(model, validation_data, calibration_texts,
                                     held_out_split(model_path) if model_path else None, options)

    with publish.claimed_version(base, version, force) as version, \
            publish.staged_version(base, version, force) as (staging, scratch):
        parity, artifacts, skipped, runtimes_skipped = {"keras": task.reference(model, validation)}, {}, {}, {}
        for format_module, variant in plan:
            key = artifact_key(format_module, variant)
            path = staging / relative_path(format_module, variant)
            try:
                artifact = format_module.write(model, path, variant, task=task, options=options,
                                               validation=validation, name=name, version=version, scratch=scratch)
                parity[key], not_installed = _validate(task, validation, format_module, variant, key, path, scratch)
            except RuntimeCrash as crash:
                _remove(staging, path)
                if variant == REFERENCE_VARIANT:
                    raise ExportError(f"{key}: {crash}") from None
                # A variant that a runtime refuses is left out and reported, not shipped.
                skipped[key] = f"{path.name} not written: {crash}"
                continue
            parity[key]["bytes"] = artifact["bytes"]
            artifacts[key] = _relative_to(artifact, path, staging)
            if not_installed:
                runtimes_skipped[key] = not_installed
            reached("export artifact")
        report = {
            "name": name,
            "version": version,
            "task": task.name,
            "validation_examples": task.validation_examples(validation),
            "parity": parity,
            "skipped": {**skipped, **skipped_formats},
            "runtimes_skipped": runtimes_skipped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (staging / REPORT_FILENAME).write_text(json.dumps(report, indent=2))
        reached("export report")
        described = manifest.build_manifest(name, version, task, model, options, artifacts, parity,
                                            publish.file_hashes(staging))
        if model_path is not None:  # the .keras file it came from, so `zoo verify` can check it too
            from zoo.runtime.verify import sha256
            from zoo.saving import model_file, training_report

            source = model_file(model_path).resolve()
            described["source"] = {"path": str(source), "sha256": sha256(source)}
            run_id = (training_report(source) or {}).get("run_id")
            if run_id:  # the training run whose model.keras (and report) this version was made from
                described["source"]["run_id"] = run_id
        (staging / manifest.MANIFEST_FILENAME).write_text(json.dumps(described, indent=2, ensure_ascii=False))
        reached("export manifest")
    reached("export published")
    return ExportResult(base / str(version), name, version, report, task)


def _validate(task, validation, format_module, variant, key, path, scratch):
    """Run one written file on every runtime it must work on and on each installed optional one, and
    compare it with Keras; returns its parity figures and `{runtime: why it was skipped}`."""
    if path.is_file():
        task.check_runtime_file(path, validation)
    optional = format_module.optional_runtimes(path)
    not_installed = {runtime: f"not installed ({extras.install_hint(module)})"
                     for runtime, module in optional.items() if not extras.installed(module)}
    runnable = tuple(runtime for runtime in optional if runtime not in not_installed)
    outputs = format_module.run(path, variant, task, validation, scratch, optional_runtimes=runnable)
    return task.compare(validation, key, outputs, exact=variant in format_module.EXACT_VARIANTS), not_installed


def _relative_to(artifact, path, staging):
    """The manifest entry with its `path` and `sidecar` relative to the version folder."""
    folder = path if path.is_dir() else path.parent
    return {**artifact, **{field: str((folder / artifact[field]).resolve().relative_to(staging.resolve()))
                           for field in ("path", "sidecar") if field in artifact}}


def _remove(staging, path):
    if path == staging or not path.is_file():
        return
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)
    if path.parent != staging and not any(path.parent.iterdir()):
        shutil.rmtree(path.parent)


def check_extras(formats):
    """Raise `zoo.extras.MissingExtraError` for the first format named in `formats` whose extra is not installed
    (None: the task's default formats, where a missing extra skips the format instead)."""
    for name in () if formats is None else (formats,) if isinstance(formats, str) else formats:
        module = extras.first_missing(FORMATS[name].NEEDS) if name in FORMATS else None
        if module:
            raise extras.MissingExtraError(extras.missing_message(module, f"the {name} format"), name=module)


def _plan(task, model, formats, variants):
    """`([(format module, variant)], {artifact: why it is skipped})` in order, every request checked before
    any work (`check_extras` has refused a format named without its extra; a default one is skipped)."""
    serving = [name for name, module in FORMATS.items() if module.serves(task, model)]
    if formats is None:
        formats = [name for name in task.default_formats if name in serving]
    else:
        formats = _choices("formats", formats, FORMATS)
        for name in formats:
            if name not in serving:
                raise ExportError(f"formats: {name!r} does not export this {task.name} model "
                                  f"({type(model.backbone).__name__}); formats for it: {', '.join(serving)}")
    missing = {name: extras.first_missing(get_format(name).NEEDS) for name in formats}
    missing = {name: module for name, module in missing.items() if module}
    all_variants = {variant for module in FORMATS.values() for variant in module.VARIANTS}
    variants = _choices("variants", task.default_variants if variants is None else variants, all_variants)
    for variant in variants:
        if variant not in task.variants:
            raise ExportError(f"variants: {task.name} models have no {variant!r} variant; "
                              f"expected any of {list(task.variants)}")
        if not any(variant in get_format(name).VARIANTS for name in formats):
            writers = [name for name in serving if variant in get_format(name).VARIANTS]
            raise ExportError(f"variants: {variant!r} needs one of the formats {writers}")
    plan = [(get_format(name), variant) for name in formats
            for variant in (REFERENCE_VARIANT,) + tuple(v for v in variants if v in get_format(name).VARIANTS)]
    skipped = {artifact_key(module, variant):
               "not written: " + extras.missing_message(missing[module.NAME], f"the {module.NAME} format")
               for module, variant in plan if module.NAME in missing}
    return [(module, variant) for module, variant in plan if module.NAME not in missing], skipped


def _choices(field, values, allowed):
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [value for value in values if value not in allowed]
    if unknown:
        if field == "formats":
            get_format(unknown[0])  # its error suggests the close name
        raise ExportError(f"{field}: unknown {unknown}; expected any of {sorted(allowed)}")
    return tuple(dict.fromkeys(values))
