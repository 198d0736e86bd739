"""Publishing one TF Serving version: choose it, stage it, hash it, rename it into place.

TF Serving loads `<root>/<name>/<version>/` for integer folder names only, so
the version is assembled in a hidden folder beside it (`.tmp-<version>-*`)
and renamed into place only when every artifact passed validation: a failed
or interrupted export leaves nothing, and a reader never sees half a version.
"""

import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile

from zoo.export.errors import ExportError


def check_name(name):
    if not name or os.sep in name or name.startswith("."):
        raise ExportError(f"name must be a plain folder name, got {name!r}")
    return name


def choose_version(base, version, force):
    """The next free version under `base`, or `version` checked against what exists."""
    existing = sorted(int(path.name) for path in base.iterdir() if path.name.isdigit()) if base.is_dir() else []
    if version is None:
        return (existing[-1] + 1) if existing else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be an integer >= 1, got {version!r}")
    if version in existing and not force:
        raise ExportError(f"{base / str(version)} already exists; choose another version or pass force=True (--force)")
    return version


@contextlib.contextmanager
def staged_version(base, version, force):
    """Yield `(staging, scratch)` folders; publish `staging` as `base/version` if the block succeeds.

    `scratch` (in the temp dir) holds intermediate files and is always removed.
    """
    base.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="zoo-export-"))
    try:
        yield staging, scratch
        _move_into_place(staging, base / str(version), force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def file_hashes(directory):
    """`{relative path: sha256}` of every file under `directory`."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


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
