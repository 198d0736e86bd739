"""Integrity checks of an exported version, before anything runs: `zoo verify DIR` and on load.

`manifest.json` lists the sha256 of every file of the version (and of the
`.keras` file it was exported from); a flipped bit, a reordered or shortened
sidecar vocabulary or a swapped file fails here with the file's name. Each
sidecar is also checked against its model file's own tensor shapes (the
window length, the number of labels, the KV cache), so a sidecar from
another export does not run and give wrong answers. NumPy-free, TensorFlow-free.

Only what is inside the version folder is checked, and only as the manifest
names it: an entry must be a relative path that stays inside the folder
(no `..`, no absolute path), and no file or folder of the version may be a
symlink (it could point anywhere, and change after the check). The `.keras`
file the version was exported from is recorded in the manifest (`source`),
not read: it lies outside the folder.

A model file in a version folder whose manifest is gone is refused on load:
deleting the manifest must not switch the check off. A file counts as in a
version folder when it sits in `<N>/<format>/` (N in ASCII digits, as TF
Serving names versions) or beside an `export_report.json`; a file elsewhere
(a format's single file, copied to a phone's folder) has nothing to be
checked against and loads as it is.
"""

import hashlib
import json
import os
import pathlib
import stat

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
    """`(version folder, manifest dict)` of the export holding `model_path`, or None outside one.

    The path is taken as given, symlinks unresolved: a link to a file
    elsewhere is refused by `verify_files`, not checked against that place.
    """
    model_path = pathlib.Path(os.path.abspath(model_path))
    for folder in (model_path.parent, model_path.parent.parent):
        manifest = folder / MANIFEST_FILENAME
        if os.path.lexists(manifest):
            return folder, read_manifest(folder)
    return None


def read_manifest(version_dir):
    """The manifest dict of `version_dir`; a VerificationError if it is missing, a symlink or not JSON."""
    manifest = pathlib.Path(version_dir) / MANIFEST_FILENAME
    _refuse_symlink(manifest, version_dir)
    if not manifest.is_file():
        raise VerificationError(f"{manifest}: no manifest (is this an exported version folder?)")
    try:
        found = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VerificationError(f"{manifest}: not a JSON manifest ({error})") from None
    if not isinstance(found, dict) or not isinstance(found.get("files"), dict):
        raise VerificationError(f"{manifest}: field 'files': expected path -> sha256")
    return found


def version_folder_of(model_path):
    """The exported version folder `model_path` sits in by zoo's layout (see the module docstring), else None."""
    model_path = pathlib.Path(os.path.abspath(model_path))
    for folder in (model_path.parent, model_path.parent.parent):
        if os.path.lexists(folder / "export_report.json"):
            return folder
    version = model_path.parent.parent
    return version if version.name.isascii() and version.name.isdigit() else None


def verify_files(version_dir, manifest, names=None):
    """Check the sha256 of `names` (default: every file the manifest lists)."""
    version_dir = pathlib.Path(version_dir)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise VerificationError(f"{version_dir / MANIFEST_FILENAME}: field 'files': expected path -> sha256")
    for name in files:
        _check_entry(version_dir, name)
    for name in files if names is None else names:
        path = version_dir / name
        if name not in files:
            raise VerificationError(f"{path}: not listed in {MANIFEST_FILENAME}; the version was changed after export")
        _refuse_symlink(path, version_dir)
        if not path.is_file():
            raise VerificationError(f"{path}: listed in {MANIFEST_FILENAME} but missing")
        if sha256(path) != files[name]:
            raise VerificationError(f"{path}: sha256 differs from {MANIFEST_FILENAME}; the file was modified")


def _check_entry(version_dir, name):
    """A manifest entry must be a plain relative path: no `..`, `.` or empty part, not absolute."""
    parts = name.split("/")
    if os.path.isabs(name) or "\\" in name or "\0" in name or any(part in ("", ".", "..") for part in parts):
        raise VerificationError(f"{version_dir / MANIFEST_FILENAME}: field 'files': entry {name!r}: expected a "
                                "relative path inside the version folder")


def _refuse_symlink(path, version_dir):
    """`path` (inside `version_dir`) and every folder between them must not be a symlink."""
    version_dir = pathlib.Path(version_dir)
    relative = pathlib.Path(path).relative_to(version_dir)
    for depth in range(1, len(relative.parts) + 1):
        part = version_dir.joinpath(*relative.parts[:depth])
        try:
            is_link = stat.S_ISLNK(os.lstat(part).st_mode)
        except OSError:  # not there (or under a file): the callers report it missing
            return
        if is_link:
            raise VerificationError(f"{part}: a symlink inside an exported version; zoo checks only the version's "
                                    "own files (copy the file in instead)")


def verify_model_file(model_path):
    """On load: the file and its sidecar against the manifest of the version they sit in.

    A file in a version folder without its manifest is refused; a file
    outside any version folder is not checked (see the module docstring).
    """
    from zoo.runtime.sidecar import sidecar_path

    found = find_manifest(model_path)
    if found is None:
        version_dir = version_folder_of(model_path)
        if version_dir is not None:
            raise VerificationError(f"{version_dir / MANIFEST_FILENAME}: missing, so {model_path} cannot be checked "
                                    "against it; export the version again, or pass verify=False to load it unchecked")
        return
    version_dir, manifest = found
    model_path = pathlib.Path(os.path.abspath(model_path))
    names = [model_path.relative_to(version_dir).as_posix()]
    if os.path.lexists(sidecar_path(model_path)):
        names.append(sidecar_path(model_path).relative_to(version_dir).as_posix())
    verify_files(version_dir, manifest, names)


def verify_version(version_dir):
    """`zoo verify DIR`: every file of the version against its manifest, no file added, each sidecar against its
    model file. Returns `(files checked, sidecars checked)`; a VerificationError names the first problem."""
    from zoo.runtime import backends
    from zoo.runtime.sidecar import read_sidecar, sidecar_path

    version_dir = pathlib.Path(version_dir)
    manifest = read_manifest(version_dir)
    verify_files(version_dir, manifest)
    listed = set(manifest["files"]) | {MANIFEST_FILENAME}
    for folder, subfolders, filenames in os.walk(version_dir):
        for name in sorted(subfolders + filenames):
            path = pathlib.Path(folder) / name
            _refuse_symlink(path, version_dir)
            if name in filenames and path.relative_to(version_dir).as_posix() not in listed:
                raise VerificationError(f"{path}: not listed in {MANIFEST_FILENAME}; the version was changed after "
                                        "export")
    checked = 0
    for name in manifest["files"]:
        path = version_dir / name
        if path.suffix in backends.RUNTIMES and sidecar_path(path).is_file():
            spec = read_sidecar(path)
            check_sidecar_against_model(spec, backends.open_model(path, None, 1), sidecar_path(path))
            checked += 1
    return len(manifest["files"]), checked


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
