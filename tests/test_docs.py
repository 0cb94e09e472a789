"""The generated docs cannot go stale: docs/cli.md, docs/api.md and docs/performance.md are held
to a fresh generation, every command has help and appears in the docs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cmmsim import docgen

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
API_MD = ROOT / "docs" / "api.md"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def tree():
    """``[(path, command, context), ...]`` for every command and group of cmmsim."""
    return list(docgen.walk(docgen.command_tree()))


def test_the_tree_holds_every_command(tree):
    paths = {" ".join(p) for p, _, _ in tree}
    # A few anchors, so that a walk that stops at the root cannot pass the tests below.
    assert {
        "cmmsim",
        "cmmsim replay",
        "cmmsim sweep",
        "cmmsim trace",
        "cmmsim trace synth",
        "cmmsim trace convert",
    } <= paths
    assert len(paths) >= 15


def test_every_command_and_parameter_has_help(tree):
    for path, cmd, ctx in tree:
        assert docgen.command_help(cmd), f"{' '.join(path)} has no help"
        for param in docgen.params_of(cmd, ctx):
            assert (getattr(param, "help", None) or "").strip(), f"{' '.join(path)}: {param.name} has no help"


def test_cli_md_is_a_fresh_generation():
    # Built from attributes click and typer's vendored click share; the same
    # text came out under typer 0.15.4 (click 8.1.8) and typer 0.29.2.
    assert CLI_MD.read_text() == docgen.render(), "docs/cli.md is stale: run `python -m cmmsim.docgen`"


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
            assert re.search(rf"`{re.escape(' '.join(path))}\b", readme), (
                f"README.md's command table lacks `{' '.join(path)}`"
            )


def test_readme_library_example_runs_as_a_script():
    """Pasted into a script, the README's library example works after the quick start."""
    readme = README.read_text()
    tree = ast.parse(re.search(r"```python\n(.*?)```", readme, re.S).group(1))
    # api.sweep's spawn workers import the script that started them: outside the
    # main guard, each would run the example again and die starting its own pool.
    for node in tree.body:
        guard = isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        assert guard or not calls, f"README example: {ast.unparse(node)!r} runs outside the main guard"
    # A folder holding a different sweep is refused: not the quick start's.
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    taken = set(re.findall(r"-o (\S+)", quick))
    sweeps = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "api.sweep"]
    assert sweeps and all(ast.literal_eval(n.args[1]) not in taken for n in sweeps), taken


def test_docgen_check_mode(tmp_path, capsys):
    out, api_out = tmp_path / "cli.md", tmp_path / "api.md"
    args = ["-o", str(out), "--api-out", str(api_out)]
    assert docgen.main([*args, "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert docgen.main(args) == 0
    assert docgen.main([*args, "--check"]) == 0
    assert out.read_text() == CLI_MD.read_text()
    assert api_out.read_text() == API_MD.read_text()


def test_api_md_is_a_fresh_generation_naming_every_public_name():
    from cmmsim import api

    text = API_MD.read_text()
    assert text == docgen.render_api(), "docs/api.md is stale: run `python -m cmmsim.docgen`"
    for name in api.__all__:
        assert f"\n## {name}\n" in text, f"{name} is missing from docs/api.md"
        obj = getattr(api, name)
        if callable(obj):
            # numpydoc with units: every function documents its parameters and what it returns.
            doc = obj.__doc__ or ""
            assert "Returns\n    -------" in doc, f"{name} documents no return value"
            params = [p for p in __import__("inspect").signature(obj).parameters if p != "self"]
            for p in params:
                assert f"`{p}` (" in text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0], (
                    f"{name}: parameter {p} undocumented"
                )


def test_docstring_markdown_renders_numpydoc():
    doc = """One line.

    Parameters
    ----------
    n : int
        Pages, :func:`cmmsim.api.load`
        and ``more``.

    Returns
    -------
    polars.DataFrame
        Rows.
    """
    md = docgen.docstring_markdown(doc)
    assert md == (
        "One line.\n\n**Parameters**\n\n- `n` (int): Pages, `cmmsim.api.load` and `more`.\n\n"
        "**Returns**\n\n- polars.DataFrame: Rows.\n"
    )


# -- benchmark records and docs/performance.md ----------------------------------------------------
PERF_MD = ROOT / "docs" / "performance.md"
BENCH_DIR = ROOT / "benchmarks"


def test_performance_md_is_rendered_from_the_records():
    from benchmarks import render

    text = PERF_MD.read_text()
    assert render.render_doc(text, render.load_records()) == text, (
        "docs/performance.md is stale: run `python benchmarks/render.py`"
    )


def test_every_record_says_when_where_and_how():
    from benchmarks import render

    records = render.load_records()
    assert {"replay", "onepass", "stream", "shards", "convert", "trace-size"} <= set(records)
    for name, rec in records.items():
        assert rec["benchmark"] == name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?", rec["date"]), name
        assert re.fullmatch(r"[0-9a-f]{40}", rec["commit"] or ""), name
        assert rec["command"].startswith("python benchmarks/bench_"), name
        assert rec["tables"] and all(t["rows"] for t in rec["tables"]), name
        # A fresh run records the machine; a record copied from the old README says so.
        assert rec["machine"].get("cores") or rec.get("transcribed"), name


def test_every_benchmark_writes_a_record():
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        src = script.read_text()
        assert "add_json_argument(ap)" in src and "emit(" in src, f"{script.name} writes no JSON record"


def test_record_round_trip(tmp_path, monkeypatch):
    import json

    from benchmarks import figures, render

    table = figures.Table(
        "3 runs",
        [
            figures.Column("run", "run"),
            figures.Column("rate", "M/s", ",.2f"),
            figures.Column("z", "max z", ".1f"),
            figures.Column("x", "ratio", ".2f", "x"),
        ],
    )
    table.add(run="a", rate=1234.5678, z=float("inf"), x=0.5)
    table.add(run="b", rate=float("nan"), z=1.25, x=2)
    with pytest.raises(KeyError):
        table.add(run="c")
    monkeypatch.setattr("sys.argv", [str(BENCH_DIR / "bench_demo.py"), "--events", "10"])
    out = figures.write_record("demo", [table], path=tmp_path / "demo.json", params={"events": 10}, lines=["one line"])
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no temporary file left
    rec = json.loads(out.read_text())  # strict JSON: no NaN or Infinity tokens
    assert "NaN" not in out.read_text() and "Infinity" not in out.read_text()
    assert rec["command"] == "python benchmarks/bench_demo.py --events 10"
    assert rec["machine"]["cores"] and rec["params"] == {"events": 10}
    md = render.render_record(rec)
    assert "| a | 1,234.57 | inf | 0.50x |" in md and "| b | nan | 1.2 | 2.00x |" in md
    assert "*3 runs*" in md and "- one line" in md and "`python benchmarks/bench_demo.py --events 10`" in md
    assert figures.Table.from_json(rec["tables"][0]).text().splitlines()[0] == "3 runs"

    doc = "intro\n<!-- figures: demo -->\nold\n<!-- /figures: demo -->\nend\n"
    new = render.render_doc(doc, {"demo": rec})
    assert new.startswith("intro\n<!-- figures: demo -->\n") and new.endswith("<!-- /figures: demo -->\nend\n")
    assert "old" not in new and render.render_doc(new, {"demo": rec}) == new
    with pytest.raises(render.RenderError, match="no <!-- figures: NAME --> marker for other"):
        render.render_doc(doc, {"demo": rec, "other": rec})
    with pytest.raises(render.RenderError, match="no benchmarks/results/NAME.json for marker"):
        render.render_doc(doc, {})


def test_files_named_in_the_docs_exist():
    # A module that moved (balloon.py became a package) leaves its old path behind.
    # perf-log.md is history: it may name files that are gone.
    pages = [README, *(p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "perf-log.md")]
    for page in pages:
        for path in re.findall(
            r"`((?:replay|analysis|tracer|tests|benchmarks|sample_traces)/[\w./*-]+)`", page.read_text()
        ):
            assert list(ROOT.glob(path)), f"{page.name}: `{path}` names no file"


def test_relative_links_in_the_docs_resolve():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name}: link to {target} leads nowhere"


def test_docstrings_hold_no_measured_ratios():
    # House style: measured figures go to docs/perf-log.md (history) or
    # docs/performance.md (rendered), never to a docstring, which says what and why.
    ratio = re.compile(r"\b\d+\.\d+x\b")
    found = []
    for folder in ("analysis", "replay", "tracer"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    for m in ratio.finditer(ast.get_docstring(node) or ""):
                        found.append(f"{f.relative_to(ROOT)} {getattr(node, 'name', '(module)')}: {m.group()}")
    assert found == []
