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
import signal
import tempfile

from zoo import interrupts
from zoo.export.errors import ExportError
from zoo.saving import alive as _alive
from zoo.saving import remove_stale


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
def claimed_version(base, version, force):
    """Choose the version (as `choose_version`) and hold it for this export until the block ends.

    A claim is a `.claim-<version>` folder holding the claimant's pid, made
    whole under a pid-named temporary name and renamed into place (a rename
    onto an existing, never empty, claim fails): so a claim always names its
    owner, even when that owner was killed the instant it claimed. A second
    export started meanwhile takes the next free version, or fails at once
    when it asked for this one, instead of failing at the end; a dead
    claimant's claim is taken over.
    """
    base.mkdir(parents=True, exist_ok=True)
    remove_stale(base, ".claiming-")
    explicit = version is not None
    candidate = choose_version(base, version, force)
    while True:
        claim = base / f".claim-{candidate}"
        pending = pathlib.Path(tempfile.mkdtemp(prefix=f".claiming-{os.getpid()}-", dir=base))
        (pending / "pid").write_text(str(os.getpid()))
        try:
            os.rename(pending, claim)
        except OSError:  # claimed already (ENOTEMPTY / EEXIST)
            shutil.rmtree(pending, ignore_errors=True)
            owner = _claim_owner(claim)
            if owner is not None and _alive(owner):
                if explicit:
                    raise ExportError(f"{base / str(candidate)} is being exported right now by process {owner}")
                candidate += 1
            else:  # its claimant is gone (or the claim was released meanwhile): take it over
                shutil.rmtree(claim, ignore_errors=True)
            continue
        break
    try:
        yield candidate
    finally:
        shutil.rmtree(claim, ignore_errors=True)


def _claim_owner(claim):
    try:
        return int((claim / "pid").read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def staged_version(base, version, force):
    """Yield `(staging, scratch)` folders; publish `staging` as `base/version` if the block succeeds.

    `scratch` (in the temp dir) holds intermediate files and is always removed.
    Both names carry this process's id, so the next export removes what a
    killed one (kill -9) left behind; SIGTERM is handled like Ctrl-C.
    """
    base.mkdir(parents=True, exist_ok=True)
    remove_stale(base, f".tmp-{version}-")
    remove_stale(pathlib.Path(tempfile.gettempdir()), "zoo-export-")
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-", dir=base))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"zoo-export-{os.getpid()}-"))
    try:
        # SIGTERM (a container stop, `kill`) cleans up like Ctrl-C instead of leaving the staging folder.
        with interrupts.interruptible((signal.SIGTERM,)):
            yield staging, scratch
            make_readable(staging)
            _move_into_place(staging, base / str(version), force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def make_readable(directory):
    """Folders 0777 and files 0666 less the umask (mkdtemp makes 0700): TF Serving may run as another user."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for path in directory.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


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
