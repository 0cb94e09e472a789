"""The checkout's folders install as one ``cmmsim`` namespace, completely.

pyproject.toml lists the packages by hand (a ``package-dir`` mapping cannot be
found automatically), so a new subpackage left out of the list would be
missing from a non-editable install; this test catches that in the checkout.
"""

import tomllib
from pathlib import Path

import cmmsim
import cmmsim.replay
import cmmsim.tracer

ROOT = Path(__file__).resolve().parent.parent
TOP = {"analysis": "cmmsim", "replay": "cmmsim.replay", "tracer": "cmmsim.tracer"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_folder_with_init_is_a_listed_package():
    on_disk = set()
    for folder, name in TOP.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join([name, *rel]))
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert listed == on_disk, f"pyproject packages differ: missing {on_disk - listed}, extra {listed - on_disk}"


def test_package_dirs_map_the_three_folders():
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping == {name: folder for folder, name in TOP.items()}


def test_imported_modules_come_from_the_mapped_folders():
    # An editable install maps each name to its folder of this checkout (when
    # the tests run against the checkout) or to site-packages/cmmsim/...
    assert Path(cmmsim.__file__).parent.name in ("analysis", "cmmsim")
    assert Path(cmmsim.replay.__file__).parent.name == "replay"
    assert Path(cmmsim.tracer.__file__).parent.name == "tracer"


def test_shipped_cost_profiles_are_package_data():
    data = _pyproject()["tool"]["setuptools"]["package-data"]["cmmsim.replay"]
    profiles = sorted((ROOT / "replay").glob(data[0]))
    assert profiles, "no cost profile matches the package-data pattern"
    from cmmsim.replay.costs import COST_KEYS, load_profile, shipped

    # Every profile the code offers is package data (one outside the pattern would
    # be missing from a non-editable install), and each loads complete under its name.
    assert [p.stem for p in profiles] == shipped()
    for p in profiles:
        prof = load_profile(p.stem)
        assert prof.name == p.stem and set(prof.costs_ns) == set(COST_KEYS)
