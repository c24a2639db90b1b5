"""Faults: nothing lost, nothing half-written.

Ctrl-C (SIGINT) and SIGTERM of a real ``abs-engine run --out DIR`` during the run and during the
write phase; a full disk (a small tmpfs where one can be mounted, and ENOSPC raised by writers
everywhere); permissions under the umask; the manifest. Every case checks that the previous
outputs are intact and that no temporary file or staging folder is left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from abs_engine import files
from abs_engine.cli import EXIT_ERROR, EXIT_INTERRUPTED, main
from abs_engine.files import (
    MANIFEST,
    STAGING_PREFIX,
    TEST_PAUSE_ENV,
    OutputError,
    atomic_write,
    staged_outputs,
)
from tests.conftest import ABS_ENGINE, ROOT, base_deal, in_simulation, run_cli, snapshot

# --- helpers ---------------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.startswith(STAGING_PREFIX) or p.name.endswith(".tmp")
    ]


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A previous run's outputs (``run -s huake_base --out``), written once for the module."""
    out = tmp_path_factory.mktemp("previous") / "out"
    done = run_cli("run", "-s", "huake_base", "--out", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def sigint_deliverable() -> Iterator[None]:
    """SIGINT at Python's own handler for the test, whatever this process inherited: a test
    runner started in the background of a script without job control has SIGINT ignored, which
    ``main`` rightly leaves alone (as under ``nohup``)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@pytest.fixture
def old_outputs(tmp_path: Path, previous_run: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An output folder holding a previous run's outputs (a copy of ``previous_run``), and
    their snapshot."""
    out = tmp_path / "out"
    shutil.copytree(previous_run, out)
    before = snapshot(out)
    assert MANIFEST in before and "summary.json" in before
    yield out, before


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Child:
    """``abs-engine`` in a subprocess, its stderr collected line by line as it comes."""

    def __init__(self, args: list[str], **env: str):
        # SIGINT set to its default in the child, whatever the test runner's parent ignores,
        # so that Python installs its KeyboardInterrupt handler there as in a terminal.
        self.proc = subprocess.Popen(
            [str(ABS_ENGINE), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(**env),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            if self.proc.poll() is not None:
                self.reader.join(10)
                pytest.fail(f"abs-engine ended ({self.proc.returncode}) before {what}:\n{self.err}")
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        pytest.fail(f"timed out waiting for {what}:\n{self.err}")

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"abs-engine did not stop on signal {sig}:\n{self.err}")
        self.reader.join(10)
        return self.proc.returncode, self.err


def _mapped(pid: int, name: str) -> bool:
    """A shared library whose path contains ``name`` is mapped into process ``pid``."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _signal_masks(pid: int) -> dict[str, str]:
    """The signal masks of process ``pid`` (/proc/PID/status: pending, blocked, ignored)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    keys = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn")
    return {k: v.strip() for k, _, v in (ln.partition(":") for ln in lines) if k in keys}


def _wait_delivered(pid: int, sig: int, timeout: float = 5.0) -> bool:
    """Wait until signal ``sig`` is no longer pending for process ``pid``."""
    bit = 1 << (int(sig) - 1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        masks = _signal_masks(pid)
        if not masks:
            return True  # the process has ended
        if not any(int(masks.get(k, "0"), 16) & bit for k in ("SigPnd", "ShdPnd")):
            return True
        time.sleep(0.005)
    return False


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/maps").exists() or not ABS_ENGINE.exists(),
    reason="needs Linux /proc and the installed abs-engine script",
)


# --- signals of a real process ------------------------------------------------------------------


@needs_proc
def test_sigint_during_the_run(old_outputs):
    """Ctrl-C while the Monte Carlo runs: status 130, 'interrupted', no traceback, the folder
    as it was."""
    out, before = old_outputs
    args = ["run", "-s", "huake_mc", "--paths", "2000000000", "--no-progress", "--out", str(out)]
    child = Child(args)
    child.wait_for(lambda: in_simulation(child.proc.pid), 300, "the simulation to start")
    code, err = child.stop(signal.SIGINT)
    assert code == EXIT_INTERRUPTED == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert snapshot(out) == before and not leftovers(out)


@needs_proc
def test_sigterm_during_the_write_phase(old_outputs):
    """SIGTERM to a real process while every new file is staged and none moved (the test hook
    pauses there): status 143, no temporary file or staging folder left (SIGTERM left
    ``.summary_*.json.*.tmp`` before), the previous outputs intact. Both signals at that point
    in this process: :func:`test_signal_during_the_write_phase`."""
    out, before = old_outputs
    args = ["run", "-s", "huake_base", "-s", "cdr_stress", "--out", str(out)]
    child = Child(args, **{TEST_PAUSE_ENV: "120"})
    child.wait_for(lambda: "pausing before commit" in child.err, 120, "the write phase")
    staged = [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(staged) == 1 and (staged[0] / "tranches_cdr_stress.csv").exists()  # all staged
    code, err = child.stop(signal.SIGTERM)
    assert code == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert snapshot(out) == before and not leftovers(out)


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_signal_during_the_write_phase(
    old_outputs, monkeypatch, capsys, sig, status, sigint_deliverable
):
    """The signal, sent to this process by the write phase's test hook (every new file staged,
    none moved), reaches ``main``'s handlers: the status of the signal, "interrupted", the
    previous outputs intact, nothing left over."""
    out, before = old_outputs
    all_staged: list[bool] = []

    def pause() -> None:
        staging = [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
        all_staged.append(len(staging) == 1 and (staging[0] / "tranches_cdr_stress.csv").exists())
        # main's handler, not the default action (which would end this test process)
        assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        signal.raise_signal(sig)
        time.sleep(10)  # the handler raises before this returns

    monkeypatch.setattr(files, "_test_pause", pause)
    code = main(["run", "-s", "huake_base", "-s", "cdr_stress", "--out", str(out)])
    err = capsys.readouterr().err
    assert all_staged == [True]  # the hook ran once, with every file staged
    assert code == status, err
    assert "interrupted" in err and "Traceback" not in err
    assert snapshot(out) == before and not leftovers(out)


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 200 KiB tmpfs (root only; skipped where it cannot be mounted)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def test_full_disk_on_a_small_tmpfs(small_tmpfs: Path, capsys):
    out = small_tmpfs / "out"
    assert main(["run", "-s", "huake_base", "--out", str(out)]) == 0
    capsys.readouterr()
    before = snapshot(out)
    # four scenarios' ledgers need more than the 200 KiB the tmpfs has left
    args = ["run", "-s", "huake_base", "-s", "cdr_stress", "-s", "large_obligor_2"]
    args += ["-s", "zero_default", "-s", "large_obligor_2_no_support", "--out", str(out)]
    code = main(args)
    err = capsys.readouterr().err
    assert code == EXIT_ERROR == 1, err
    assert "no space left on the device" in err and str(out) in err
    assert "nothing was changed there" in err and "Traceback" not in err
    assert snapshot(out) == before and not leftovers(out)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("writer", ["to_csv", "to_parquet"])
def test_enospc_from_a_writer_leaves_the_previous_outputs(old_outputs, monkeypatch, capsys, writer):
    """ENOSPC part-way through the writes (a half-written file staged): exit 1, a message
    naming the folder, the previous outputs intact, nothing left over."""
    out, before = old_outputs
    real = getattr(pd.DataFrame, writer)
    calls = {"n": 0}

    def flaky(self, path=None, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= (2 if writer == "to_csv" else 1):  # one Parquet file in this run
            if hasattr(path, "write"):  # Parquet goes through a Python file (files.write_parquet)
                path.write(b"half a file")
            else:
                Path(path).write_bytes(b"half a file")
            if writer == "to_parquet":  # pyarrow's way: errno only in the text
                raise OSError(
                    "[Errno 28] Error writing bytes to file. Detail: [errno 28] No "
                    "space left on device"
                )
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, writer, flaky)
    code = main(["run", "-s", "huake_base", "-s", "cdr_stress", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert f"to {out}: no space left on the device" in err and "Traceback" not in err
    assert snapshot(out) == before and not leftovers(out)


def test_enospc_into_a_new_folder_leaves_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _enospc)
    out = tmp_path / "new" / "deeper"
    assert main(["run", "-s", "huake_base", "--out", str(out)]) == EXIT_ERROR
    assert "no space left" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_failed_rename_puts_back_what_was_moved(old_outputs, monkeypatch, capsys):
    """A rename failing in the middle of the commit (an I/O error): the files already moved are
    put back, the old manifest too."""
    out, before = old_outputs
    real = os.replace
    calls = {"n": 0}

    def replace(src, dst):
        if str(dst).startswith(str(out)) and STAGING_PREFIX not in str(dst):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code = main(["run", "-s", "huake_base", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "input/output error" in err and "put back" in err, err
    assert snapshot(out) == before and not leftovers(out)


def test_synth_on_a_full_disk_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _enospc)
    out = tmp_path / "pools"
    out.mkdir()
    code = main(["synth", str(out), "--obligors", "8", "--periods", "4"])
    assert code == EXIT_ERROR and "no space left" in capsys.readouterr().err
    assert list(out.iterdir()) == []


# --- interrupts in-process ----------------------------------------------------------------------


def test_keyboard_interrupt_while_writing(old_outputs, monkeypatch, capsys):
    out, before = old_outputs

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    assert main(["run", "-s", "huake_base", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted"
    assert snapshot(out) == before and not leftovers(out)


def test_interrupt_swallowed_in_a_callback_is_not_lost(monkeypatch, capsys, sigint_deliverable):
    """Ctrl-C landing in a ctypes callback (numba's compiler calls Python from LLVM that way)
    is 'ignored' by Python; main sends the signal again until the command has it."""
    import ctypes

    from abs_engine import commands

    def command(args):
        def callback():
            raise KeyboardInterrupt

        ctypes.CFUNCTYPE(None)(callback)()  # the interrupt is swallowed here
        end = time.monotonic() + 10
        while time.monotonic() < end:  # ... and must come back
            time.sleep(0.01)
        return 0

    monkeypatch.setattr(commands, "cmd_validate", command)
    assert main(["validate", str(ROOT / "waterfalls" / "huake_2025.toml")]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted", err


def test_main_restores_the_signal_handlers(capsys):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    hook = sys.unraisablehook
    assert main(["validate", str(ROOT / "waterfalls" / "huake_2025.toml")]) == 0
    assert {s: signal.getsignal(s) for s in before} == before
    assert sys.unraisablehook is hook


def test_a_second_signal_while_the_command_ends_is_ignored(monkeypatch, capsys, sigint_deliverable):
    """Interrupted, the ``abs-engine`` process (``until_exit``) ignores further signals: a
    second Ctrl-C while it printed "interrupted" (or left ``main``) raised from there, a
    traceback and exit -2 (a validator's SIGTERM then SIGINT 5 ms later). The handlers stay
    ignored for the process's exit; the test puts them back."""
    import abs_engine.cli as cli

    def command(args):
        raise KeyboardInterrupt

    def status(exc):
        os.kill(os.getpid(), signal.SIGINT)  # the second signal, while the command ends
        return 130

    monkeypatch.setattr(cli, "_dispatch", command)
    monkeypatch.setattr(cli, "interrupted_status", status)
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.getsignal(s) for s in sigs}
    try:
        assert main(["validate", "x.toml"], until_exit=True) == 130
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in sigs)
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@pytest.mark.slow  # a process each: 2-4 s
@pytest.mark.parametrize("det", [False, True], ids=["monte_carlo", "deterministic"])
def test_a_reader_that_stops_reading_leaves_the_files(tmp_path, det):
    """``run --out D | head -1``: the tables were printed before the files were put in place,
    and rich's broken-pipe exit (status 1, no message) left no output folder. The files come
    first; a closed pipe ends the command with status 0, as with --json."""
    out = tmp_path / "out"
    args = ["run", "-s", "huake_base"] if det else ["run", "--paths", "1000"]
    proc = subprocess.Popen(
        [str(ABS_ENGINE), *args, "--no-progress", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as head does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err
    assert (out / MANIFEST).exists() and not leftovers(out)


@pytest.mark.slow  # two processes: about 4 s
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_on_a_full_device_is_one_error_line(tmp_path):
    """stdout on a full device (> /dev/full): a traceback and exit 1 from validate, run and
    run --json; now one error line, and a run's files in place."""
    out = tmp_path / "out"
    env = _child_env()
    env.pop("PYTHONUNBUFFERED")  # buffered, as a shell leaves it: validate's one line stayed
    # in the buffer until Python's exit, "Exception ignored ... OSError" and status 120
    for args in (["validate", str(ROOT / "waterfalls" / "huake_2025.toml")],
                 ["run", "-s", "huake_base", "--out", str(out)]):  # fmt: skip
        with open("/dev/full", "w") as full:
            done = subprocess.run([str(ABS_ENGINE), *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, env=env, timeout=120)  # fmt: skip
        assert done.returncode == EXIT_ERROR, done.stderr
        assert done.stderr == "error: cannot write the output: No space left on device\n"
    assert (out / MANIFEST).exists()


@pytest.mark.parametrize("committed", [True, False])
def test_an_interrupt_once_the_outputs_are_in_place_is_not_reported_as_nothing_written(
    tmp_path, monkeypatch, capsys, committed
):
    """Exit 130 says the output folder is as it was: an interrupt that lands after the
    command's outputs were moved into place (the signal held back by the commit arrives right
    after it) exits 0, saying the outputs are complete; one before, 130 and nothing written."""
    import abs_engine.commands as commands

    out = tmp_path / "out"

    def command(args):
        with files.staged_outputs(out) as stage:
            stage.write("x.txt", lambda p: p.write_text("x"))
            if not committed:
                raise KeyboardInterrupt
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "cmd_validate", command)
    code = main(["validate", str(ROOT / "waterfalls" / "huake_2025.toml")])
    err = capsys.readouterr().err
    if committed:
        assert code == 0 and "they are complete" in err and (out / "x.txt").read_text() == "x"
    else:
        assert code == EXIT_INTERRUPTED and "interrupted" in err and not out.exists()


def test_signals_held_during_the_commit_are_delivered_after_it(tmp_path):
    """A SIGTERM raised while the files move does not stop the move: the set is complete, and
    the signal arrives right after."""
    got: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
    try:
        with files._signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert got == []  # held back
        time.sleep(0.05)
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old)


# --- the set, the manifest, permissions ----------------------------------------------------------


def test_manifest_lists_the_files_with_sizes_and_digests(old_outputs):
    out, _ = old_outputs
    doc = json.loads((out / MANIFEST).read_text())
    listed = {f["name"]: f for f in doc["files"]}
    assert set(listed) == {p.name for p in out.iterdir()} - {MANIFEST}
    for name, f in listed.items():
        data = (out / name).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["command"] == "run" and doc["scenarios"] == ["huake_base"]


def test_staged_outputs_error_inside_the_block_changes_nothing(tmp_path):
    out = tmp_path / "o"
    with staged_outputs(out) as stage:
        stage.write("a.txt", lambda p: p.write_text("old"))
    before = snapshot(out)
    with pytest.raises(RuntimeError), staged_outputs(out) as stage:
        stage.write("a.txt", lambda p: p.write_text("new"))
        stage.write("b.txt", lambda p: p.write_text("new"))
        raise RuntimeError("boom")
    assert snapshot(out) == before and not leftovers(out)
    with pytest.raises(ValueError), staged_outputs(out) as stage:
        stage.write("../escape.txt", lambda p: p.write_text("x"))
    assert not (tmp_path / "escape.txt").exists()


def test_stale_staging_of_a_killed_run_is_removed(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f"{STAGING_PREFIX}{dead.pid}-abcd"
    stale.mkdir()
    (stale / "summary.json").write_text("{}")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    with staged_outputs(out) as stage:
        stage.write("a.txt", lambda p: p.write_text("x"))
    assert not stale.exists() and not leftovers(out)


@pytest.fixture
def umask():
    """Set the umask for a test (restored after)."""
    saved = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_umask_permissions(tmp_path, umask, capsys, mask, mode):
    umask(mask)
    assert files.current_umask() == mask
    out = tmp_path / "out"
    assert main(["run", "-s", "huake_base", "--out", str(out)]) == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert set(modes.values()) == {mode}, modes
    pools = tmp_path / "pools"
    assert main(["synth", str(pools), "--obligors", "8", "--periods", "4"]) == 0
    assert {stat.S_IMODE(p.stat().st_mode) for p in pools.iterdir()} == {mode}


def test_atomic_write_modes(tmp_path, umask):
    umask(0o022)
    atomic_write(tmp_path / "a.txt", lambda p: p.write_text("x"))
    atomic_write(tmp_path / "b.txt", lambda p: p.write_text("x"), mode=0o600)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600
    with pytest.raises(OSError):
        atomic_write(tmp_path / "c.txt", _enospc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_output_error_is_an_abs_engine_error():
    from abs_engine.errors import AbsEngineError

    assert issubclass(OutputError, AbsEngineError)


def test_failed_rename_without_hard_links_keeps_the_previous_file(old_outputs, monkeypatch, capsys):
    """No hard links (EPERM) and then a rename failing on the second file: the previous files
    were moved aside, not linked, and are put back; nothing is lost."""
    out, before = old_outputs
    real = os.replace

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    moved_in = {"n": 0}

    def replace(src, dst):
        if (
            STAGING_PREFIX in str(src)
            and ".previous" not in str(src)
            and STAGING_PREFIX not in str(dst)
        ):
            moved_in["n"] += 1
            if moved_in["n"] == 2:
                raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", replace)
    code = main(["run", "-s", "huake_base", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "input/output error" in err and "put back" in err, err
    assert snapshot(out) == before and not leftovers(out)


def test_failed_restore_names_the_file_and_keeps_the_backup(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with staged_outputs(out) as stage:
        stage.write("a.txt", lambda p: p.write_text("old a"))
        stage.write("b.txt", lambda p: p.write_text("old b"))
    real = os.replace

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    def replace(src, dst):
        if str(dst).endswith("b.txt") and ".previous" not in str(src) + str(dst):
            raise OSError(errno.EIO, "Input/output error")
        if ".previous" in str(src) and str(src).endswith("a.txt"):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match=r"could not put back a\.txt:") as info:
        with staged_outputs(out) as stage:
            stage.write("a.txt", lambda p: p.write_text("new a"))
            stage.write("b.txt", lambda p: p.write_text("new b"))
    monkeypatch.undo()
    kept = [p for p in out.rglob("a.txt") if ".previous" in str(p)]
    assert kept and kept[0].read_text() == "old a" and str(kept[0].parent) in str(info.value)
    assert (out / "b.txt").read_text() == "old b"


def test_a_writer_value_error_is_an_output_error(tmp_path):
    def bad(p):
        raise ValueError("embedded null byte")

    with pytest.raises(OutputError, match="embedded null byte"):
        with staged_outputs(tmp_path / "out") as stage:
            stage.write("x.csv", bad)
    assert not (tmp_path / "out").exists()


def test_failed_synth_into_a_new_folder_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _enospc)
    out = tmp_path / "new" / "pools"
    code = main(["synth", str(out), "--obligors", "8", "--periods", "4"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "no space left" in err and "nothing was changed" in err, err
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    assert main(["synth", str(out), "--obligors", "8", "--periods", "4"]) == 0
    assert len(list(out.iterdir())) == 3


MC_SCENARIO = {
    "kind": "monte_carlo",
    "name": "mc",
    "defaults": {"copula": "gaussian", "correlation": {"kind": "fixed", "value": 0.2}},
    "recovery": {"kind": "rate", "rate": 0.3, "lag_periods": 0},
}


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["run", "-s", "{det}"],
        ["stress"],
        ["price", "--tranche", "A", "--curve", "0.02", "-s", "{mc}", "--paths", "1000"],
        ["breakeven", "--tranche", "A", "--param", "pd_multiplier", "-s", "{mc}"]
        + ["--paths", "1000"],
        ["sensitivity", "--x", "pd_multiplier=1,2", "--y", "recovery=0.1,0.3", "-s", "{mc}"]
        + ["--paths", "1000"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_that_loads_a_deal_prints_its_warnings(tmp_path, capsys, command):
    over = [{"name": "A", "balance": 150.0, "coupon": {"kind": "fixed", "rate": 0.0}}]
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps(base_deal(tranches=over)))
    det, mc = tmp_path / "det.json", tmp_path / "mc.json"
    det.write_text(json.dumps({"name": "det"}))
    mc.write_text(json.dumps(MC_SCENARIO))
    argv = [a.format(det=det, mc=mc) for a in command]
    code = main([argv[0], str(deal), *argv[1:]])
    err = capsys.readouterr().err
    # a warning leaves the exit status as it is: 150 of notes on a pool of 100 cannot price
    # at par or pass first_loss at any PD, so price and breakeven then refuse (exit 2)
    assert code == (2 if argv[0] in ("price", "breakeven") else 0), err
    assert "warning:" in err and "under-collateralised" in err, err


# --- signals while the command starts up (red-team pass 2) ---------------------------------------


@needs_proc
def test_signals_while_the_modules_load(tmp_path):
    """SIGINT and, right after it, SIGTERM in the first second, while pydantic, numba and
    pandas load (one process for both signals): they gave a KeyboardInterrupt traceback and
    status -2 (SIGINT) or a bare kill, -15 (SIGTERM). Both are noted until the modules are
    loaded; the first decides: status 130, "interrupted", nothing written."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "stray.txt").write_text("keep")
    child = Child(["synth", str(out), "--obligors", "50"])
    # NumPy mapped into the child: past Python's own start-up (about 50 ms, where SIGINT is
    # Python's KeyboardInterrupt in whatever module loads) and inside the guarded imports
    child.wait_for(lambda: _mapped(child.proc.pid, "_multiarray_umath"), 60, "NumPy to load")
    child.proc.send_signal(signal.SIGINT)
    # SIGTERM once the kernel has handed SIGINT to the child (no longer pending): "first" is
    # then well defined however loaded the machine is
    delivered = _wait_delivered(child.proc.pid, signal.SIGINT)
    mask = _signal_masks(child.proc.pid)
    code, err = child.stop(signal.SIGTERM)
    assert code == 130, f"{err} (SIGINT delivered: {delivered}; child {mask})"
    assert err.strip() == "interrupted" and "Traceback" not in err, err
    assert [p.name for p in out.iterdir()] == ["stray.txt"] and not leftovers(out)


def test_out_folder_with_a_previous_run_and_a_stray_file(old_outputs, capsys):
    """A second run into a folder holding a first run's outputs and a file of the user's: the
    stray file is untouched, and the manifest lists exactly the new run's files."""
    out, _ = old_outputs
    (out / "notes.txt").write_text("mine")
    assert main(["run", "-s", "cdr_stress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "mine" and not leftovers(out)
    doc = json.loads((out / MANIFEST).read_text())
    names = {f["name"] for f in doc["files"]}
    assert doc["scenarios"] == ["cdr_stress"] and "notes.txt" not in names
    assert "tranches_cdr_stress.csv" in names and "tranches_huake_base.csv" not in names
    for f in doc["files"]:
        assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]


def test_a_folder_named_in_another_encoding_takes_every_output(tmp_path, capsys):
    """A folder name that is not UTF-8 (a GBK-named folder, bytes Linux allows): pyarrow
    took paths as UTF-8 text, so run --out failed at ledger.parquet after the whole run,
    synth likewise, and a tape in such a folder could not be read."""
    folder = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xbd\xe1\xb9\xfb"))
    assert main(["run", "-s", "huake_base", "--out", str(folder / "run")]) == 0
    assert (folder / "run" / "ledger.parquet").exists()
    with open(folder / "run" / "ledger.parquet", "rb") as fh:  # pyarrow's paths are UTF-8
        assert pd.read_parquet(fh).shape[0] > 0
    assert main(["synth", "--obligors", "20", str(folder / "synth")]) == 0
    deal = folder / "synth" / "synthetic_20.json"
    assert main(["validate", str(deal)]) == 0
    assert "20 obligors" in capsys.readouterr().out


def test_only_a_failing_stdout_is_told_as_the_output(monkeypatch, capsys):
    """A write to stdout that fails (a full device) is one error line and status 1, and
    stdout is the caller's again after; another disk error of the command (a full kernel
    cache) is not told as the output's (the first version caught every ENOSPC, and pointed
    the caller's stdout at /dev/null for good)."""
    import abs_engine.cli as cli

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    def prints(args):
        print("a line")
        return 0

    monkeypatch.setattr(cli, "_dispatch", prints)
    full = Full()
    monkeypatch.setattr(sys, "stdout", full)
    assert main(["validate", "x.toml"]) == EXIT_ERROR
    assert sys.stdout is full
    monkeypatch.undo()
    assert capsys.readouterr().err == "error: cannot write the output: No space left on device\n"

    def cache_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/x.nbi")

    monkeypatch.setattr(cli, "_dispatch", cache_full)
    with pytest.raises(OSError, match="x.nbi"):
        main(["validate", "x.toml"])
