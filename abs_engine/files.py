"""Writing output files so that nothing half-written is left behind, and a run's files change
together or not at all.

* :func:`atomic_write` — one file: written to a temporary name beside it, then renamed over it.
* :func:`staged_outputs` — a set of files (one run's outputs): written into a hidden staging
  folder inside the output folder (``.abs-engine-staging-<pid>-<random>``, same file system),
  then moved into place by renames, with a manifest written last.

The manifest (``manifest.json`` unless named otherwise) lists the files of the last complete
run with their sizes and SHA-256 digests. **Readers trust the manifest**: the renames of a set are
each atomic but not atomic together, so the old manifest is removed before the first file is
replaced and the new one is put in place after the last; a folder without a manifest is being
updated (or its update was killed outright), and a file not listed in the manifest, or whose
size or digest differs, is not part of the last run. While the files are being moved, SIGINT,
SIGTERM and SIGHUP are held back (a few renames) and delivered right after, so an interrupt
never stops a set half-moved; if a rename fails, the files already moved are put back.

If a run fails or is interrupted before the move (a full disk, Ctrl-C, SIGTERM — see
``abs_engine.cli.main``), the staging folder is removed and the output folder holds exactly
what it held before. A staging folder can only outlive its run if the process is killed outright
(SIGKILL, power loss); the next run into the same folder removes such leftovers once their
process is gone.

Files get the permissions a newly created file gets under the user's umask (``0o666 & ~umask``,
0644 under the usual umask 022) unless a mode is given — not the 0600 of a temporary file.

Test hook (tests only, not an interface): when the environment variable
``ABS_ENGINE_TEST_PAUSE_BEFORE_COMMIT`` holds a number of seconds, :func:`staged_outputs` prints
``abs-engine: test hook: pausing before commit`` on stderr and sleeps that long with every file
staged and nothing yet moved, so that a test can interrupt the write phase deterministically.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import AbsEngineError, InputError
from .schema.files import forget_input, input_at

__all__ = [
    "MANIFEST",
    "OutputError",
    "StagedOutputs",
    "atomic_write",
    "current_umask",
    "default_file_mode",
    "staged_outputs",
]

#: the manifest of a run's outputs (see the module docstring)
MANIFEST = "manifest.json"
#: prefix of the hidden staging folders inside an output folder
STAGING_PREFIX = ".abs-engine-staging-"
#: environment variable of the test hook (see the module docstring)
TEST_PAUSE_ENV = "ABS_ENGINE_TEST_PAUSE_BEFORE_COMMIT"
#: staging folders of dead processes older than this (seconds) are removed by the next run
STALE_AFTER_S = 60.0

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_HELD_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None
)
_UMASK_LOCK = threading.Lock()


class OutputError(AbsEngineError):
    """Output files could not be written (a full disk, a failing device): nothing was changed
    in the output folder. The command line exits with status 1 (not 2: the input was fine)."""


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it
    (``/proc/self/status``); elsewhere set and restored at once, under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """Permissions of a newly created file under the current umask: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def _no_space(exc: BaseException) -> bool:
    """A full disk or quota, however the writer reports it (pyarrow puts errno in the text)."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota exceeded" in text or "errno 28" in text


def _output_error(
    exc: BaseException, out_dir: Path, name: str, *, kept: bool, after: str | None = None
) -> OutputError:
    if after is None:
        after = (
            "nothing was changed there: it holds its previous outputs"
            if kept
            else "files already moved were put back"
        )
    if _no_space(exc):
        why = "no space left on the device"
    elif isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror.lower()
    else:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return OutputError(f"cannot write {name} to {out_dir}: {why}; {after}")


#: outputs put in place in this process so far (a staged set, or one file by atomic_write)
_COMMITS = [0]


def commits() -> int:
    """How many sets of outputs this process has put in place (:meth:`StagedOutputs.commit`,
    :func:`atomic_write`): the command compares it before and after an interrupt, which
    must not be reported as leaving the outputs unchanged once they were written."""
    return _COMMITS[0]


def write_parquet(frame: Any, index: bool | None = False) -> Callable[[Path], None]:
    """A writer of ``frame`` (a pandas DataFrame) as Parquet at a path, through a Python file:
    pyarrow takes a path as UTF-8 text and failed on a folder named in another encoding
    (bytes Linux allows, e.g. a GBK-named folder), after the whole run."""

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            frame.to_parquet(fh, index=index)

    return write


def atomic_write(path: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """Write via ``write(tmp)`` into a temporary file beside ``path``, then rename it over
    ``path``; on any error or interrupt the temporary file is removed and ``path`` is untouched.
    ``mode``: permissions to give the file (default: those of a new file under the umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, default_file_mode() if mode is None else mode)
        os.replace(tmp, path)
        _COMMITS[0] += 1
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (the few renames of a commit,
    the removal of a staging folder), then deliver them as they would have been. Python-level
    handlers, so whichever thread the system delivers the signal to; only in the main thread
    (elsewhere the block just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if signum not in pending:
            pending.append(signum)

    old: dict[int, Any] = {}
    for sig in _HELD_SIGNALS:
        handler = signal.getsignal(sig)
        if handler is None or handler == signal.SIG_IGN:
            continue  # installed outside Python, or ignored: leave it
        old[sig] = handler
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in pending:
            signal.raise_signal(sig)


def _digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, flushed to the device on the way (fsync)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
        with contextlib.suppress(OSError):
            os.fsync(fh.fileno())
    return size, h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging folders left by processes killed outright (their pid gone, older than
    :data:`STALE_AFTER_S`)."""
    try:
        entries = list(out_dir.iterdir())
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        try:
            pid = int(entry.name[len(STAGING_PREFIX) :].split("-", 1)[0])
            old = now - entry.lstat().st_mtime > STALE_AFTER_S
        except (ValueError, OSError):
            continue
        if pid == os.getpid() or not old:
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except OSError:
            continue  # someone else's process: leave it
        shutil.rmtree(entry, ignore_errors=True)


class StagedOutputs:
    """A set of output files staged in a hidden folder inside ``out_dir`` and moved into place
    together by :meth:`commit` (see the module docstring). Use through :func:`staged_outputs`.

    ``manifest``: the manifest's file name (None: no manifest); ``mode``: permissions of the
    files (default: those of a new file under the umask)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        manifest: str | None = MANIFEST,
        mode: int | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.manifest = manifest
        self.mode = default_file_mode() if mode is None else mode
        self.info = dict(info or {})
        self.names: list[str] = []
        self.committed = False
        self._created: list[Path] = []
        self._keep_staging = False
        if manifest is not None:
            self._refuse_an_input(manifest)
        try:
            missing = []
            cur = self.out_dir
            while not cur.exists() and cur != cur.parent:
                missing.append(cur)
                cur = cur.parent
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._created = missing  # deepest first: removed in this order if nothing is written
            _remove_stale_staging(self.out_dir)
            self.dir = Path(
                tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.out_dir)
            )
        except OSError as exc:
            self._remove_created()
            raise _output_error(exc, self.out_dir, "the staging folder", kept=True) from None

    def path(self, name: str) -> Path:
        """Where ``name`` goes once committed."""
        return self.out_dir / name

    def write(self, name: str, write: Callable[[Path], object]) -> Path:
        """Stage ``name`` via ``write(path)`` (a path in the staging folder); returns the path
        it will have once committed. A full disk raises :class:`OutputError`."""
        if (
            not name
            or name in (".", "..", self.manifest)
            or "/" in name
            or "\\" in name
            or name.startswith(STAGING_PREFIX)
            or name in self.names
        ):
            raise ValueError(f"not a plain, new output file name: {name!r}")
        self._refuse_an_input(name)
        staged = self.dir / name
        try:
            write(staged)
            os.chmod(staged, self.mode)
        except OSError as exc:
            raise _output_error(exc, self.out_dir, name, kept=True) from None
        except Exception as exc:
            # writers that wrap the OSError (pyarrow, pandas); a ValueError: a path the
            # system refuses (e.g. an embedded NUL)
            if _no_space(exc) or isinstance(exc, ValueError):
                raise _output_error(exc, self.out_dir, name, kept=True) from None
            raise
        self.names.append(name)
        return self.path(name)

    def _refuse_an_input(self, name: str) -> None:
        """An :class:`~abs_engine.errors.InputError` if output ``name`` would replace a file
        this process read as input (a deal, scenario, tape, curve or rating table in the
        output folder under an output's name), or a folder (moved aside and deleted with the
        staging folder, whatever it held)."""
        target = self.path(name)
        read_as = input_at(target)
        if read_as is not None:
            raise InputError(
                f"{target} is an input of this run ({read_as}): writing the outputs "
                f"to {self.out_dir} would replace it; nothing was written: choose another "
                "output folder"
            )
        if target.is_dir():
            raise InputError(
                f"{target} is a folder: an output file of that name would replace it and all "
                "it holds; nothing was written: move it, or choose another output folder"
            )

    def _manifest_document(self) -> dict[str, Any]:
        files = []
        for name in self.names:
            size, sha = _digest(self.dir / name)
            files.append({"name": name, "bytes": size, "sha256": sha})
        return {
            "manifest": "abs-engine outputs",
            "version": 1,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.info,
            "files": files,
            "note": "the files of the last complete run; a file not listed here, or whose size "
            "or sha256 differs, is not part of it",
        }

    def _seal(self, names: list[str]) -> None:
        """Write the manifest into the staging folder (or, without one, flush every staged
        file) so that what is renamed next is on disk; an ``OSError`` propagates."""
        if self.manifest is not None:
            doc = self._manifest_document()
            text = json.dumps(doc, indent=2) + "\n"
            staged_manifest = self.dir / self.manifest
            staged_manifest.write_text(text, encoding="utf-8")
            os.chmod(staged_manifest, self.mode)
            _digest(staged_manifest)  # fsync
        else:
            for name in names:
                _digest(self.dir / name)  # fsync

    def _back_up_manifest(self, backup: Path) -> bool:
        """Move the output folder's manifest, if any, into ``backup`` first, so that the folder
        claims no complete run while files move; True if there was one."""
        if self.manifest is not None and self.path(self.manifest).exists():
            os.replace(self.path(self.manifest), backup / self.manifest)
            return True
        return False

    def _move_staged(self, names: list[str], backup: Path, moved: list[tuple[str, bool]]) -> None:
        """Rename each staged file over its output, keeping the previous one in ``backup``, the
        manifest last; appends (name, had a previous file) to ``moved`` as it goes, for
        :meth:`_put_back` after an ``OSError``."""
        for name in names:
            target = self.path(name)
            had = target.exists()
            if had:
                try:
                    os.link(target, backup / name)
                except OSError:
                    # no hard links here: move it aside (the old manifest is already
                    # gone, so the folder holds no complete run meanwhile anyway)
                    os.replace(target, backup / name)
            moved.append((name, had))
            os.replace(self.dir / name, target)
        if self.manifest is not None:
            os.replace(self.dir / self.manifest, self.path(self.manifest))

    def _put_back(
        self, backup: Path, moved: list[tuple[str, bool]], old_manifest: bool
    ) -> str | None:
        """Undo a failed :meth:`_move_staged`: the previous files (and manifest) back from
        ``backup``, new ones removed, newest first. Returns None, or the sentence for the
        error naming what could not be put back (the staging folder is then kept)."""
        failed: list[str] = []
        for name, had in reversed(moved):
            try:
                if had:
                    os.replace(backup / name, self.path(name))
                else:
                    self.path(name).unlink(missing_ok=True)
            except OSError:
                failed.append(name)
        if old_manifest and self.manifest is not None:
            try:
                os.replace(backup / self.manifest, self.path(self.manifest))
            except OSError:
                failed.append(self.manifest)
        if not failed:
            return None
        self._keep_staging = True  # the previous copies are only there now
        return (
            f"could not put back {', '.join(reversed(failed))}: the previous copies are in {backup}"
        )

    def commit(self) -> list[Path]:
        """Move every staged file into the output folder, the manifest last; returns their
        paths. Signals are held back while the files move; a failed rename puts back what was
        moved and raises :class:`OutputError`."""
        if self.committed:
            return [self.path(n) for n in self.names]
        names = list(self.names)
        try:
            self._seal(names)
        except OSError as exc:
            raise _output_error(exc, self.out_dir, self.manifest or "outputs", kept=True) from None
        _test_pause()
        backup = self.dir / ".previous"
        with _signals_held():
            moved: list[tuple[str, bool]] = []  # (name, had a previous file, now in backup)
            old_manifest = False
            try:
                backup.mkdir()
                old_manifest = self._back_up_manifest(backup)
                self._move_staged(names, backup, moved)
            except OSError as exc:
                after = self._put_back(backup, moved, old_manifest)
                raise _output_error(
                    exc, self.out_dir, "the outputs", kept=False, after=after
                ) from None
            self.committed = True
            _COMMITS[0] += 1
            _fsync_dir(self.out_dir)
        for n in names:  # outputs now, though a check may have read one back while staged
            forget_input(self.path(n))
        return [self.path(n) for n in names]

    def discard(self) -> None:
        """Remove the staging folder (and an output folder this run created, if empty)."""
        if self._keep_staging:
            return
        with _signals_held():
            shutil.rmtree(self.dir, ignore_errors=True)
            if not self.committed:
                self._remove_created()

    def _remove_created(self) -> None:
        for d in self._created:
            try:
                d.rmdir()
            except OSError:
                break


def _test_pause() -> None:
    raw = os.environ.get(TEST_PAUSE_ENV)
    if not raw:
        return
    try:
        seconds = float(raw)
    except ValueError:
        return
    print("abs-engine: test hook: pausing before commit", file=sys.stderr, flush=True)
    time.sleep(max(0.0, seconds))


@contextlib.contextmanager
def staged_outputs(
    out_dir: str | Path,
    *,
    manifest: str | None = MANIFEST,
    mode: int | None = None,
    info: dict[str, Any] | None = None,
) -> Iterator[StagedOutputs]:
    """Stage a set of output files and move them into ``out_dir`` together when the block ends
    without an error (see the module docstring)::

        with staged_outputs(out) as stage:
            stage.write("summary.json", lambda p: p.write_text(text))
            stage.write("ledger.csv", lambda p: frame.to_csv(p, index=False))

    On an error or interrupt inside the block (or while staging), the staging folder is removed
    and ``out_dir`` keeps what it held. ``info``: extra entries for the manifest."""
    stage = StagedOutputs(out_dir, manifest=manifest, mode=mode, info=info)
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()
