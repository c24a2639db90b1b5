"""The stale-cache guard: cached kernels are dropped when any kernel source changes; and the
inlined kernels' code objects kept on disk beside them."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import linecache
import marshal
import os
import pickle

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.kernels import CODE_CACHE_PREFIX, _invalidate_stale_cache
from abs_engine.kernels import _codecache as codecache
from abs_engine.kernels import _inline as inline_module
from abs_engine.kernels import specialise as SP
from abs_engine.kernels._inline import inline_helpers


def test_guard_drops_cache_files_when_a_kernel_source_changes(tmp_path):
    src = tmp_path / "kernels"
    src.mkdir()
    (src / "waterfall.py").write_text("x = 1\n")
    (src / "montecarlo.py").write_text("y = 1\n")
    cache = tmp_path / "cache"
    dirs = [(cache, True)]
    _invalidate_stale_cache(src, dirs)  # creates the folder and stamps it
    assert (cache / "abs_engine_kernels.sha256").is_file()
    kept = cache / "montecarlo.run_block_py__jit-1.py311.nbi"
    other = cache / "someone_else.f-1.py311.nbi"
    kept.write_text("")
    other.write_text("")
    _invalidate_stale_cache(src, dirs)  # nothing changed: cache kept
    assert kept.exists()
    (src / "waterfall.py").write_text("x = 2\n")  # a dependency changed
    _invalidate_stale_cache(src, dirs)
    assert not kept.exists() and other.exists()


def test_guard_leaves_missing_secondary_folders_alone(tmp_path):
    src = tmp_path / "kernels"
    src.mkdir()
    (src / "rng.py").write_text("z = 0\n")
    _invalidate_stale_cache(src, [(tmp_path / "user_cache", False)])
    assert not (tmp_path / "user_cache").exists()


def test_guard_drops_the_inlined_code_files_with_numbas(tmp_path):
    """The inlined kernels' code files (abs_engine.kernels._codecache) go with numba's when a
    kernel source changes."""
    src = tmp_path / "kernels"
    src.mkdir()
    (src / "waterfall.py").write_text("x = 1\n")
    dirs = [(tmp_path / "cache", True)]
    _invalidate_stale_cache(src, dirs)
    code = tmp_path / "cache" / f"{CODE_CACHE_PREFIX}{'0' * 64}.bin"
    code.write_bytes(b"")
    _invalidate_stale_cache(src, dirs)
    assert code.exists()
    (src / "waterfall.py").write_text("x = 2\n")
    _invalidate_stale_cache(src, dirs)
    assert not code.exists()


# --- the inlined kernels' code kept on disk (abs_engine.kernels._codecache) ---


def _twice(x):
    y = x + x
    return y


def _caller(x):
    z = _twice(x)
    return z + 1.0


def _plus_one(fn: ast.FunctionDef) -> ast.FunctionDef:
    """A transform: ``return z + 1.0`` becomes ``return z + 2.0``; it notes itself in the
    state."""
    fn.body[-1].value.right = ast.Constant(2.0)
    _STATE_SEEN.append(1)
    return fn


_STATE_SEEN: list[int] = []


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The code cache's folders: one, empty, under tmp_path."""
    where = tmp_path / "code"
    monkeypatch.setattr(codecache, "_folders", lambda: [where])
    return where


def _files(folder):
    return sorted(folder.glob(f"{CODE_CACHE_PREFIX}*.bin")) if folder.is_dir() else []


def test_inlined_code_is_read_back_instead_of_inlined_again(folder, monkeypatch):
    """The first build is stored; the next reads it (the inliner not run: it would raise)
    and is the same code; without ``cache`` nothing is stored."""
    plain = inline_helpers(_caller, (_twice,), dict(_caller.__globals__))
    assert plain(2.0) == 5.0 and _files(folder) == []
    first = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    assert len(_files(folder)) == 1

    def no_inlining(*args):
        raise AssertionError("inlined again")

    monkeypatch.setattr(inline_module, "_inlined", no_inlining)
    again = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    assert again(2.0) == first(2.0) == 5.0
    assert again.__code__.co_code == first.__code__.co_code == plain.__code__.co_code
    assert again.__code__.co_filename == __file__ and again.__name__ == "_caller"
    assert again.__code__.co_firstlineno == _caller.__code__.co_firstlineno
    with pytest.raises(AssertionError, match="inlined again"):  # another key: built
        inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True,
                       cache_extra="other")  # fmt: skip


def test_a_transforms_state_comes_back_with_its_code(folder):
    """A transform runs once for its key; its state is given back with the code it made."""
    _STATE_SEEN.clear()

    def transform(fn):
        state["folded"] = np.arange(3.0)
        return _plus_one(fn)

    state: dict = {}
    first = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), None, transform,
                           cache=True, cache_extra="k1", state=state)  # fmt: skip
    assert first(2.0) == 6.0 and _STATE_SEEN == [1]
    state = {}
    again = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), None, transform,
                           cache=True, cache_extra="k1", state=state)  # fmt: skip
    assert again(2.0) == 6.0 and _STATE_SEEN == [1]  # not transformed again
    assert np.array_equal(state["folded"], np.arange(3.0))


def test_a_damaged_or_unwritable_cache_costs_only_time(folder, tmp_path, monkeypatch):
    """A file that fails its checksum, or whose data has another shape, is built again (and
    replaced); a folder that cannot be written, or a file name that is a folder, leaves the
    function built and nothing half-written."""
    inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    (path,) = _files(folder)
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 1  # one bit of the marshalled code
    for damaged in (b"not a pickle", bytes(flipped), _checksummed(("free", None))):
        path.write_bytes(damaged)
        fn = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
        assert fn(1.0) == 3.0 and path.read_bytes() == good
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setattr(codecache, "_folders", lambda: [blocked / "under_a_file"])
    assert inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)(1.0) == 3.0
    assert blocked.read_text() == ""
    path.unlink()
    path.mkdir()  # the cache file's name taken by a folder
    monkeypatch.setattr(codecache, "_folders", lambda: [folder])
    assert inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)(1.0) == 3.0
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


def _checksummed(extra):
    """A cache file, checksum right, holding _caller's code with ``extra`` as its data."""
    payload = pickle.dumps((marshal.dumps(_caller.__code__), extra))
    return hashlib.sha256(payload).digest() + payload


def test_cache_files_are_whole_and_readable_as_the_umask_says(folder):
    """Written to a temporary file and renamed: one file, its mode that of any file the
    process creates (numba's are the same), so a shared cache folder serves everyone."""
    old = os.umask(0o022)
    try:
        inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    finally:
        os.umask(old)
    (path,) = folder.iterdir()
    assert path.name.endswith(".bin") and path.stat().st_mode & 0o777 == 0o644


def _module(path, name, text):
    """A module of ``text`` loaded from ``path`` (not registered in sys.modules)."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_V1 = "def f(x):\n    return x\n\n\ndef g(x):\n    return x\n"
_V2 = "def f(x):\n    return x + 0.0\n\n\ndef g(x):\n    return x\n"


def test_the_key_names_the_sources_roles_interpreter_and_extra(tmp_path, monkeypatch):
    """The key changes with a function's source text, name and role (the kernel, a helper of
    its module, one of another), the extra and the interpreter."""
    mod = _module(tmp_path / "cc_mod.py", "cc_mod", _V1)
    key = inline_module._key(mod.f, (mod.g,), {"g"}, "")
    assert key == inline_module._key(mod.f, (mod.g,), {"g"}, "") and len(key) == 64
    assert key != inline_module._key(mod.g, (mod.g,), {"g"}, "")
    assert key != inline_module._key(mod.f, (mod.g,), set(), "")  # g of another module
    assert key != inline_module._key(mod.f, (mod.g,), {"g"}, "structure")
    edited = _module(tmp_path / "cc_mod.py", "cc_mod", _V2)  # the same file, edited
    linecache.checkcache(str(tmp_path / "cc_mod.py"))
    assert key != inline_module._key(edited.f, (edited.g,), {"g"}, "")
    monkeypatch.setattr(codecache, "_INTERPRETER", "another interpreter")
    assert key != inline_module._key(mod.f, (mod.g,), {"g"}, "")


def test_a_source_edited_after_import_is_keyed_by_the_text_inlined(tmp_path):
    """A function whose file is edited after its module was imported is inlined from the
    file's new text (as Python's inspect reads it), and keyed by that text: a process that
    later sees the file as it was finds its own key, not the code built from the edit."""
    path = tmp_path / "cc_edit.py"
    first = _module(path, "cc_edit", _V1)
    path.write_text(_V2)  # edited before the inliner reads it
    linecache.checkcache(str(path))
    from_edit = inline_module._key(first.f, (first.g,), {"g"}, "")
    assert "x + 0.0" in inline_module._source(first.f)[0]  # the text inlined is the edit's
    reverted = _module(path, "cc_edit", _V1)
    linecache.checkcache(str(path))
    assert inline_module._key(reverted.f, (reverted.g,), {"g"}, "") != from_edit


def test_a_specialisation_from_the_cache_is_the_one_built(folder, monkeypatch):
    """The specialised waterfall read back from the code cache (the rewrite not run again:
    it would raise) has the built one's code and folded constants (read-only, as numba
    freezes them)."""
    cd = ae.compile_deal(ae.load_deal())
    key = SP.structure_key(cd.kernel, cd.n_periods)
    built = SP._specialised_waterfall(cd.kernel, cd.n_periods, key)
    assert len(_files(folder)) == 1

    def no_rewrite(*args, **kwargs):
        raise AssertionError("rewritten again")

    monkeypatch.setattr(SP, "_Specialise", no_rewrite)
    again = SP._specialised_waterfall(cd.kernel, cd.n_periods, key)
    assert again.py_func.__code__ == built.py_func.__code__
    folded = [n for n in built.py_func.__globals__ if n.startswith(SP._PREFIX)]
    assert folded
    for name in folded:
        a, b = built.py_func.__globals__[name], again.py_func.__globals__[name]
        assert type(a) is type(b)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b) and a.dtype == b.dtype and not b.flags.writeable
        else:
            assert a == b
    with pytest.raises(AssertionError, match="rewritten again"):  # another structure: built
        SP._specialised_waterfall(cd.kernel, cd.n_periods, key[::-1])


def test_a_transformed_or_stateful_build_never_takes_a_plain_ones_file(folder):
    """A transform cached without an extra key is not the plain inlining's file, nor is a
    call keeping state the same as one keeping none: each is built (and stored) once."""
    inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    _STATE_SEEN.clear()
    fn = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), None, _plus_one, cache=True)
    assert fn(2.0) == 6.0 and _STATE_SEEN == [1]
    state: dict = {}
    fn = inline_helpers(_caller, (_twice,), dict(_caller.__globals__), None, _plus_one,
                        cache=True, state=state)  # fmt: skip
    assert fn(2.0) == 6.0 and _STATE_SEEN == [1, 1] and len(_files(folder)) == 3


def test_a_damaged_file_is_passed_over_for_the_next_folders(tmp_path, monkeypatch):
    """A damaged file in the first folder does not hide a good one in the next."""
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setattr(codecache, "_folders", lambda: [second])
    inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)
    (good,) = _files(second)
    first.mkdir()
    (first / good.name).write_bytes(b"damaged")
    monkeypatch.setattr(codecache, "_folders", lambda: [first, second])

    def no_inlining(*args):
        raise AssertionError("inlined again")

    monkeypatch.setattr(inline_module, "_inlined", no_inlining)
    assert inline_helpers(_caller, (_twice,), dict(_caller.__globals__), cache=True)(1.0) == 3.0
