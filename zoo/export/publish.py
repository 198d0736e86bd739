"""Publishing one TF Serving version: choose it, stage it, hash it, rename it into place.

TF Serving loads `<root>/<name>/<version>/` for integer folder names only, so
the version is assembled in a hidden folder beside it (`.tmp-<version>-*`)
and renamed into place only when every artifact passed validation: a failed
or interrupted export leaves nothing, and a reader never sees half a version.

Exporters may share a volume from different PID namespaces (two containers,
two hosts on NFS), where a process id names nobody, or somebody else. So
everything an export leaves behind while it runs carries its pid *and* its
host (`HOST`: hostname, boot id and PID-namespace inode, hashed); a pid is
only checked on the host it came from. Another host's claim is alive while
its owner holds the lock on the claim's `pid` file (flock: the kernel, or the
NFS server once its lease runs out, frees it when the owner dies); and a
staging folder of version N is a dead exporter's once this export holds
version N's claim. Names without a host are an older zoo's, checked by pid.
"""

import contextlib
import fcntl
import hashlib
import os
import pathlib
import re
import shutil
import signal
import socket
import tempfile

from zoo import interrupts
from zoo.export.errors import ExportError
from zoo.saving import alive


def _host_id():
    """This process's host and PID namespace, as a name-safe token: a pid means something only within it."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(pathlib.Path(path).read_text().strip() if "boot_id" in path else str(os.stat(path).st_ino))
        except OSError:
            parts.append("")
    return "h" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


HOST = _host_id()
_HOST_TOKEN = re.compile(r"h[0-9a-f]{12}")


def check_name(name):
    if not name or os.sep in name or name.startswith("."):
        raise ExportError(f"name must be a plain folder name, got {name!r}")
    return name


def version_number(name):
    """The version a folder name stands for (ASCII digits only, as TF Serving reads them), else None.

    `str.isdigit` also takes other scripts' digits ('٣') and superscripts ('²'),
    which TF Serving does not serve and `int` reads or refuses.
    """
    return int(name) if name.isascii() and name.isdigit() else None


def choose_version(base, version, force):
    """The next free version under `base`, or `version` checked against what exists."""
    existing = sorted(number for number in map(version_number, os.listdir(base)) if number is not None) \
        if base.is_dir() else []
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

    A claim is a `.claim-<version>` folder holding the claimant's pid and
    host (`pid`, `host`), made whole under a temporary name and renamed into
    place (a rename onto an existing, never empty, claim fails): so a claim
    always names its owner, even when that owner was killed the instant it
    claimed. The owner holds a lock on `pid` until the block ends. A second
    export started meanwhile takes the next free version, or fails at once
    when it asked for this one, instead of failing at the end; a dead
    claimant's claim is taken over (see the module docstring for "dead").
    """
    base.mkdir(parents=True, exist_ok=True)
    _remove_left_behind(base, ".claiming-")
    explicit = version is not None
    candidate = choose_version(base, version, force)
    while True:
        claim = base / f".claim-{candidate}"
        pending = pathlib.Path(tempfile.mkdtemp(prefix=f".claiming-{os.getpid()}-{HOST}-", dir=base))
        lock = _write_owner(pending)
        try:
            os.rename(pending, claim)
        except OSError:  # claimed already (ENOTEMPTY / EEXIST)
            lock.close()
            shutil.rmtree(pending, ignore_errors=True)
            owner = _live_claimant(claim)
            if owner is not None:
                if explicit:
                    raise ExportError(f"{base / str(candidate)} is being exported right now by {owner}")
                candidate += 1
            else:  # its claimant is gone, the claim was released meanwhile, or it is no claim (a file): take it over
                _remove(claim)
            continue
        break
    try:
        yield candidate
    finally:
        shutil.rmtree(claim, ignore_errors=True)
        lock.close()


def _write_owner(folder):
    """Write this process's `pid` and `host` into `folder`; the open, locked `pid` file (hold it while owning)."""
    (folder / "host").write_text(f"{HOST} {socket.gethostname()}")
    lock = open(folder / "pid", "w")  # noqa: SIM115 - open (and locked) for as long as the claim is held
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: other hosts then take the claim for alive, always
        pass
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _live_claimant(claim):
    """'process P (on host H)' while the claim's owner lives, None when it is gone or the claim is incomplete."""
    try:
        pid = int((claim / "pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        host, _, hostname = (claim / "host").read_text().partition(" ")
    except FileNotFoundError:  # an older zoo's claim: a pid of this host
        host, hostname = HOST, ""
    except OSError:
        return None
    if host == HOST:
        return f"process {pid}" if alive(pid) else None
    return f"process {pid} on host {hostname or host}" if _lock_held(claim / "pid") else None


def _lock_held(path):
    """Whether another process (any namespace; any NFS client) holds the lock on `path`; True when unknowable."""
    try:
        with open(path, "r+") as file:  # writable: NFS takes an exclusive flock only on a file open for writing
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
    except FileNotFoundError:
        return False
    except OSError:  # held (EWOULDBLOCK), or no locks on this file system: never take a live export's claim
        return True


def _owner_of(name, prefix):
    """`(pid, host)` from a `<prefix><pid>-<host>-...` name (host None in an older zoo's names), else None."""
    pid, _, rest = name[len(prefix):].partition("-")
    if not (pid.isascii() and pid.isdigit()):
        return None
    host = rest.split("-", 1)[0]
    return int(pid), (host if _HOST_TOKEN.fullmatch(host) else None)


def _remove_left_behind(directory, prefix, claimed=False):
    """Remove `<prefix>...` entries of `directory` whose process is gone (a killed export's leftovers).

    A pid is checked on its own host only. Another host's entry is removed
    only when `claimed`: this process holds the claim of the version the
    prefix names, which its owner lost by dying.
    """
    for path in pathlib.Path(directory).glob(f"{prefix}*"):
        owner = _owner_of(path.name, prefix)
        if owner is None:
            continue
        pid, host = owner
        if host in (None, HOST) and alive(pid):
            continue
        if host not in (None, HOST) and not claimed:
            continue
        _remove(path)


def _remove(path):
    """Remove a file, a symlink (never what it points to) or a folder."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_version(base, version, force):
    """Yield `(staging, scratch)` folders; publish `staging` as `base/version` if the block succeeds.

    `scratch` (in the temp dir) holds intermediate files and is always removed.
    Both names carry this process's id and host, so the next export removes
    what a killed one (kill -9) left behind; SIGTERM is handled like Ctrl-C.
    Run within `claimed_version(base, version)`.
    """
    base.mkdir(parents=True, exist_ok=True)
    for prefix in (f".tmp-{version}-", f".old-{version}-"):
        _remove_left_behind(base, prefix, claimed=True)
    _remove_left_behind(pathlib.Path(tempfile.gettempdir()), "zoo-export-")
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-{HOST}-", dir=base))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"zoo-export-{os.getpid()}-{HOST}-"))
    try:
        # SIGTERM (a container stop, `kill`) and SIGHUP (a closed terminal) clean up like Ctrl-C instead of
        # leaving the staging folder.
        with interrupts.interruptible((signal.SIGTERM, signal.SIGHUP)):
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
    if os.path.lexists(final):  # a dangling symlink is in the way too
        if not force:
            raise ExportError(f"{final} appeared while exporting; not overwriting it")
        # Swap with two renames so a reader never sees a half version. What was there (a version, a file,
        # a symlink: the link itself, not its target) is then removed, or by the next export if killed now.
        retired = final.with_name(f".old-{final.name}-{os.getpid()}-{HOST}")
        os.rename(final, retired)
        os.rename(staging, final)
        _remove(retired)
    else:
        os.rename(staging, final)
