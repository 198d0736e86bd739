"""What the LiteRT and ONNX plug-ins share: a runtime file's sidecar and its manifest entry."""

import json

from zoo.runtime.sidecar import sidecar_path


def write_sidecar(job, format_name, path, variant, signatures, **fields):
    """Write `path`'s sidecar (the task's fields) and return the file's manifest entry, plus `fields`."""
    sidecar = job.task.sidecar(job, variant, path.name, signatures)
    sidecar_path(path).write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    return {
        "format": format_name,
        "path": str(path.relative_to(job.staging)),
        "sidecar": str(sidecar_path(path).relative_to(job.staging)),
        "quantization": variant,
        "signatures": signatures,
        "custom_ops": [],
        "bytes": path.stat().st_size,
        **fields,
    }
