"""The generated docs cannot go stale: docs/cli.md and docs/performance.md are held
to a fresh generation, every command has help and appears in the docs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis import docgen

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def tree():
    """``[(path, command, context), ...]`` for every command and group of cmmsim."""
    return list(docgen.walk(docgen.command_tree()))


def test_the_tree_holds_every_command(tree):
    paths = {" ".join(p) for p, _, _ in tree}
    # A few anchors, so that a walk that stops at the root cannot pass the tests below.
    assert {"cmmsim", "cmmsim replay", "cmmsim sweep", "cmmsim trace", "cmmsim trace synth",
            "cmmsim trace convert"} <= paths
    assert len(paths) >= 15


def test_every_command_and_parameter_has_help(tree):
    for path, cmd, ctx in tree:
        assert docgen.command_help(cmd), f"{' '.join(path)} has no help"
        for param in docgen.params_of(cmd, ctx):
            assert (getattr(param, "help", None) or "").strip(), \
                f"{' '.join(path)}: {param.name} has no help"


def test_cli_md_is_a_fresh_generation():
    # Built from attributes click and typer's vendored click share; the same
    # text came out under typer 0.15.4 (click 8.1.8) and typer 0.29.2.
    assert CLI_MD.read_text() == docgen.render(), \
        "docs/cli.md is stale: run `python -m analysis.docgen`"


def test_cli_md_names_every_command_and_option(tree):
    text = CLI_MD.read_text()
    for path, cmd, ctx in tree:
        name = " ".join(path)
        section = text.split(f"## `{name}`\n", 1)
        assert len(section) == 2, f"{name} is missing from docs/cli.md"
        body = section[1].split("\n## ", 1)[0]
        for param in docgen.params_of(cmd, ctx):
            for opt in getattr(param, "opts", []) if docgen._is_option(param) else []:
                assert f"`{opt}`" in body, f"{name} {opt} is missing from docs/cli.md"


def test_readme_names_every_command(tree):
    readme = README.read_text()
    for path, cmd, _ in tree:
        if len(path) > 1 and not docgen.is_group(cmd):
            assert re.search(rf"`{re.escape(' '.join(path))}\b", readme), \
                f"README.md's command table lacks `{' '.join(path)}`"


def test_docgen_check_mode(tmp_path, capsys):
    out = tmp_path / "cli.md"
    assert docgen.main(["-o", str(out), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert docgen.main(["-o", str(out)]) == 0
    assert docgen.main(["-o", str(out), "--check"]) == 0
    assert out.read_text() == CLI_MD.read_text()
