"""The stale-cache guard: cached kernels are dropped when any kernel source changes."""

from __future__ import annotations

from abs_engine.kernels import _invalidate_stale_cache


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
