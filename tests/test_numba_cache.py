"""Compiled kernels are cached per version of the sources (numba alone checks one file)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cmmsim.tracer import _numba_cache

ROOT = Path(__file__).resolve().parent.parent


def _cache_dir_of(root: Path, env: dict) -> str:
    # Loaded by file path: installed, the module is cmmsim.tracer._numba_cache of
    # this checkout, whichever copy of the folders PYTHONPATH names.
    code = (
        "import importlib.util as u, os, sys; "
        "s = u.spec_from_file_location('nc', sys.argv[1]); c = u.module_from_spec(s); "
        "s.loader.exec_module(c); c.configure(); print(os.environ['NUMBA_CACHE_DIR'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(root / "tracer" / "_numba_cache.py")],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_cache_folder_follows_the_sources(tmp_path, monkeypatch):
    copy = tmp_path / "src"
    for pkg in ("tracer", "replay"):
        shutil.copytree(ROOT / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(copy)}
    first = _cache_dir_of(copy, env)
    assert first.startswith(str(tmp_path / ".cache" / "cmmsim" / "numba"))
    assert _cache_dir_of(copy, env) == first  # same sources, same folder
    states = copy / "replay" / "states.py"
    states.write_text(states.read_text() + "\n# changed\n")
    assert _cache_dir_of(copy, env) != first  # a constant's module changed: fresh kernels


def test_two_checkouts_of_the_same_sources_get_their_own_folder(tmp_path):
    # numba files a kernel under a hash of its source file's folder, so a second
    # checkout (a git worktree) of the same sources never loads the first one's
    # kernels: sharing a folder would only hide from the cold-cache notice
    # (analysis/progress.py) that this checkout compiles.
    folders = []
    for name in ("a", "b"):
        copy = tmp_path / name
        for pkg in ("tracer", "replay"):
            shutil.copytree(ROOT / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(copy)}
        folders.append(_cache_dir_of(copy, env))
    assert folders[0] != folders[1]


def test_a_cache_folder_set_by_the_user_wins(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    _numba_cache.configure()
    import os

    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"


def test_unwritable_home_falls_back_to_the_temp_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file where the cache folder would go")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    (tmp_path / "tmp").mkdir()
    assert _cache_dir_of(ROOT, env).startswith(str(tmp_path / "tmp" / "cmmsim" / "numba"))


def test_compiling_alone_makes_other_processes_wait(tmp_path, monkeypatch):
    """While one process holds the lock, another's try to take it fails; after, it succeeds."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
    )
    lock = tmp_path / "numba" / ".warm-up.lock"
    with _numba_cache.compiling_alone("warm-up"):
        assert subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode == 0


def test_compiling_alone_without_a_cache_folder_runs_unlocked(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    ran = []
    with _numba_cache.compiling_alone("warm-up"):
        ran.append(True)
    assert ran == [True]
