"""Render benchmark records (``benchmarks/results/*.json``) into ``docs/performance.md``.

    python benchmarks/render.py            # rewrite the figures in docs/performance.md
    python benchmarks/render.py --check    # exit 1 if they differ from the records

Each record's figures sit between two markers in the document::

    <!-- figures: replay -->
    ...rendered from benchmarks/results/replay.json; do not edit...
    <!-- /figures: replay -->

Only the text between markers is rewritten; the prose around it is the
document's own. Every record needs a marker pair and every marker pair a
record, so no run goes unquoted and no table is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import RESULTS_DIR, Table  # noqa: E402
from cmmsim.docgen import write_generated  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
MARKER = re.compile(r"<!-- figures: (?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /figures: (?P=name) -->", re.S)
_MACHINE_KEYS = ("python", "numba", "numpy", "polars", "pyarrow", "libcachesim")


class RenderError(Exception):
    """A record without a marker, a marker without a record, or a malformed record."""


def load_records(results_dir: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` record in ``results_dir``, by benchmark name (the file stem)."""
    records = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text())
        except ValueError as exc:
            raise RenderError(f"{path}: not JSON ({exc})") from None
    return records


def provenance(rec: dict[str, Any]) -> str:
    """One line: when, at which commit, with which command, on what machine."""
    commit = rec.get("commit")
    at = f"commit `{commit[:10]}`" if commit else "commit not recorded"
    if rec.get("dirty"):
        at += " with uncommitted changes"
    parts = [f"Run {rec['date']}", at, f"`{rec['command']}`"]
    machine = rec.get("machine") or {}
    facts = []
    if machine.get("cores"):
        facts.append(f"{machine['cores']} cores")
    if machine.get("cpu_model"):
        facts.append(machine["cpu_model"])
    facts += [f"{k} {machine[k]}" for k in _MACHINE_KEYS if machine.get(k)]
    if facts:
        parts.append("; ".join(facts))
    line = ", ".join(parts) + "."
    if rec.get("transcribed"):
        line += f" {rec['transcribed']}"
    return line


def render_record(rec: dict[str, Any]) -> str:
    """A record's figures as markdown: provenance, then each table, then the summary lines."""
    out = [
        f"<!-- rendered from benchmarks/results/{rec['benchmark']}.json by benchmarks/render.py; do not edit -->",
        "",
        provenance(rec),
        "",
    ]
    for t in rec["tables"]:
        table = Table.from_json(t)
        if table.title:
            out += [f"*{table.title}*", ""]
        out += [table.markdown(), ""]
    out += [f"- {line}" for line in rec.get("lines") or []]
    if rec.get("lines"):
        out.append("")
    return "\n".join(out)


def render_doc(text: str, records: dict[str, dict[str, Any]]) -> str:
    """``text`` with every marked section replaced by its record's rendering."""
    names = [m["name"] for m in MARKER.finditer(text)]
    missing = sorted(set(records) - set(names))
    if missing:
        raise RenderError(f"no <!-- figures: NAME --> marker for {', '.join(missing)}")
    unknown = sorted(set(names) - set(records))
    if unknown:
        raise RenderError(f"no benchmarks/results/NAME.json for marker(s) {', '.join(unknown)}")

    def sub(m: re.Match) -> str:
        name = m["name"]
        return f"<!-- figures: {name} -->\n{render_record(records[name])}<!-- /figures: {name} -->"

    return MARKER.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) the document; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", type=Path, default=DOC, help="the document (default: docs/performance.md)")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of records")
    ap.add_argument("--check", action="store_true", help="exit 1 if the document is stale")
    args = ap.parse_args(argv)
    text = args.doc.read_text()
    try:
        new = render_doc(text, load_records(args.results))
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    return write_generated(args.doc, new, check=args.check, regenerate="python benchmarks/render.py")


if __name__ == "__main__":
    sys.exit(main())
