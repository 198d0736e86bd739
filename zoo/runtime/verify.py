"""Integrity checks of an exported version, before anything runs: `zoo verify DIR` and on load.

`manifest.json` lists the sha256 of every file of the version (and of the
`.keras` file it was exported from); a flipped bit, a reordered or shortened
sidecar vocabulary or a swapped file fails here with the file's name. Each
sidecar is also checked against its model file's own tensor shapes (the
window length, the number of labels, the KV cache), so a sidecar from
another export does not run and give wrong answers. NumPy-free, TensorFlow-free.
"""

import hashlib
import json
import pathlib

from zoo.runtime import registry

MANIFEST_FILENAME = "manifest.json"


class VerificationError(ValueError):
    """A file of an exported version is not what its manifest or model says."""


def sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def find_manifest(model_path):
    """`(version folder, manifest dict)` of the export holding `model_path`, or None outside one."""
    model_path = pathlib.Path(model_path).resolve()
    for folder in (model_path.parent, model_path.parent.parent):
        manifest = folder / MANIFEST_FILENAME
        if manifest.is_file():
            try:
                return folder, json.loads(manifest.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise VerificationError(f"{manifest}: not a JSON manifest ({error})") from None
    return None


def verify_files(version_dir, manifest, names=None):
    """Check the sha256 of `names` (default: every file the manifest lists)."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise VerificationError(f"{version_dir / MANIFEST_FILENAME}: field 'files': expected path -> sha256")
    for name in files if names is None else names:
        path = version_dir / name
        if name not in files:
            raise VerificationError(f"{path}: not listed in {MANIFEST_FILENAME}; the version was changed after export")
        if not path.is_file():
            raise VerificationError(f"{path}: listed in {MANIFEST_FILENAME} but missing")
        if sha256(path) != files[name]:
            raise VerificationError(f"{path}: sha256 differs from {MANIFEST_FILENAME}; the file was modified")


def verify_model_file(model_path):
    """On load: the file and its sidecar against the manifest of the version they sit in (if any)."""
    from zoo.runtime.sidecar import sidecar_path

    found = find_manifest(model_path)
    if found is None:
        return
    version_dir, manifest = found
    model_path = pathlib.Path(model_path).resolve()
    names = [str(model_path.relative_to(version_dir))]
    if sidecar_path(model_path).is_file():
        names.append(str(sidecar_path(model_path).relative_to(version_dir)))
    verify_files(version_dir, manifest, names)


def check_sidecar_against_model(spec, model, sidecar):
    """The sidecar's tensors must be the model file's own, and what its task's fields say of their
    dimensions (window length, labels, cache) too (the check its runner module registers)."""
    for signature, expected in spec["signatures"].items():
        try:
            runner = model.signature_details(signature)
        except (KeyError, ValueError):
            raise VerificationError(f"{sidecar}: field 'signatures': the model file has no signature "
                                    f"{signature!r}") from None
        for kind in ("inputs", "outputs"):
            actual = runner[kind]
            if sorted(actual) != sorted(tensor["name"] for tensor in expected[kind]):
                raise VerificationError(f"{sidecar}: field 'signatures.{signature}.{kind}': the model file's "
                                        f"tensors are {sorted(actual)}")
            for tensor in expected[kind]:
                shape = actual[tensor["name"]]
                if [d if d is not None and d >= 0 else None for d in shape] != list(tensor["shape"]):
                    raise VerificationError(f"{sidecar}: field 'signatures.{signature}.{kind}': {tensor['name']} "
                                            f"is {list(shape)} in the model file, {tensor['shape']} in the sidecar")
    shapes = {(name, tensor["name"]): tensor["shape"] for name, signature in spec["signatures"].items()
              for tensor in signature["inputs"] + signature["outputs"]}
    registry.sidecar_fits_model_check(spec["task"])(spec, shapes, sidecar)


def same_dimension(sidecar, field, value, model_dims, model_says, sidecar_says="{}"):
    """`value` must be the model file's one dimension `model_dims` (a list of one size or None)."""
    if list(model_dims) != [value] and model_dims != [None]:
        shown = model_dims[0] if model_dims else "no such dimension"
        raise VerificationError(f"{sidecar}: field {field!r}: {sidecar_says.format(value)}, but "
                                f"{model_says.format(shown)}")
