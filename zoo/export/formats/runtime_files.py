"""What the runtime-file formats (LiteRT, ONNX) share: a file's sidecar and its manifest entry."""

import json

from zoo.runtime.sidecar import SIDECAR_FORMAT, sidecar_path


def write_sidecar(path, task, name, variant, signatures, description):
    """The sidecar beside a runtime file: what it is, its signatures, and the task's description."""
    sidecar = {"format": SIDECAR_FORMAT, "task": task.name, "model": name, "file": path.name,
               "quantization": variant, "signatures": signatures, **description}
    sidecar_path(path).write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")


def artifact_entry(path, format_name, variant, signatures, **fields):
    """A runtime file's manifest entry; `path` and `sidecar` are relative to the file's folder."""
    return {
        "format": format_name,
        "path": path.name,
        "sidecar": sidecar_path(path).name,
        "quantization": variant,
        "signatures": signatures,
        "custom_ops": [],
        "bytes": path.stat().st_size,
        **fields,
    }
