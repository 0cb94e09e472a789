"""Write ``docs/cli.md``, the command-line reference, from the command tree itself,
and ``docs/api.md``, the library reference, from the docstrings of :mod:`cmmsim.api`.

    python -m cmmsim.docgen            # rewrite docs/cli.md and docs/api.md
    python -m cmmsim.docgen --check    # exit 1 if either is stale

The reference is built from click's view of the typer app (what ``--help``
prints), not from rich's help screens: plain markdown, no colour, no boxes,
no terminal width, commands in alphabetical order, so the same code gives
the same bytes on any machine. A test holds the committed file to a fresh
generation.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from cmmsim.cli import app as cli_app
from cmmsim.tracer.io import atomic_output

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
DEFAULT_API_OUT = DEFAULT_OUT.with_name("api.md")
PROG = "cmmsim"

# Only attributes that click's Command/Parameter and the click typer vendors
# (typer >= 0.22) share are read: names, opts, help, default, required,
# multiple, nargs, is_flag, hidden; the value type from the Python annotation
# when typer keeps it, else from click's type name. The same code then gives
# the same text under either.
_TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH", bool: "BOOLEAN"}


def command_tree(app: typer.Typer | None = None) -> Any:
    """The click command behind a typer app (default: the ``cmmsim`` app)."""
    return typer.main.get_command(cli_app if app is None else app)


def is_group(cmd: Any) -> bool:
    """Whether ``cmd`` has sub-commands."""
    return hasattr(cmd, "list_commands")


def subcommands(cmd: Any, ctx: Any) -> list[tuple[str, Any]]:
    """A group's visible sub-commands, sorted by name."""
    found = ((name, cmd.get_command(ctx, name)) for name in sorted(cmd.list_commands(ctx)))
    return [(name, sub) for name, sub in found if sub is not None and not sub.hidden]


def walk(cmd: Any, path: tuple[str, ...] = (PROG,), parent: Any = None) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Every command and group below ``cmd`` (itself first), depth first, names sorted.

    Yields
    ------
    tuple
        ``(path, command, context)``: the words that call it (``("cmmsim",
        "trace", "synth")``), the click command and a context for it.
    """
    ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
    yield path, cmd, ctx
    if is_group(cmd):
        for name, sub in subcommands(cmd, ctx):
            yield from walk(sub, (*path, name), ctx)


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _base_type(annotation: Any) -> Any:
    """``list[Path] | None`` -> ``Path``."""
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin in (list, tuple, typing.Union, types.UnionType) and args:
            annotation = args[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            return annotation


def _type_name(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        base = _base_type(descriptor.annotation)
        return _TYPE_NAMES.get(base, getattr(base, "__name__", str(base)).upper())
    return param.type.name.upper()


def _value(param: Any) -> str:
    if _is_option(param) and param.is_flag:
        return "flag"
    name = _type_name(param)
    if param.multiple:
        name += ", repeatable"
    if param.nargs == -1:
        name += " ..."
    return name


def _default(param: Any) -> str:
    if param.required:
        return "required"
    default = param.default
    if default is None or (isinstance(default, list | tuple) and not default):
        return ""
    if _is_option(param) and param.is_flag and param.secondary_opts:
        return param.opts[0] if default else param.secondary_opts[0]
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, list | tuple):
        return ", ".join(str(d) for d in default)
    return str(default)


def _argument_metavar(param: Any) -> str:
    word = (param.metavar or param.name.upper()) + ("..." if param.nargs == -1 else "")
    return word if param.required else f"[{word}]"


def _names(param: Any) -> str:
    if not _is_option(param):
        return f"`{_argument_metavar(param)}`"
    return ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def params_of(cmd: Any, ctx: Any) -> list[Any]:
    """A command's arguments and options as documented (``--help`` and hidden ones left out)."""
    help_names = set(ctx.help_option_names)
    return [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False) and not help_names & set(p.opts)]


def usage(path: tuple[str, ...], cmd: Any, ctx: Any) -> str:
    """The usage line, as ``--help`` shows it."""
    words = [*path, "[OPTIONS]"]
    words += [_argument_metavar(p) for p in params_of(cmd, ctx) if not _is_option(p)]
    if is_group(cmd):
        words += ["COMMAND", "[ARGS]..."]
    return " ".join(words)


def command_help(cmd: Any) -> str:
    """The command's help text, whitespace normalised."""
    return " ".join((cmd.help or cmd.short_help or "").split())


def render(cmd: Any = None) -> str:
    """The whole reference as markdown."""
    cmd = cmd if cmd is not None else command_tree()
    out = [
        "# Command-line reference",
        "",
        "<!-- Generated by `python -m cmmsim.docgen` from the command tree; do not edit.",
        "     tests/test_docs.py fails when this file is stale. -->",
        "",
        "Every command also takes `--help`. Commands are listed in alphabetical order; "
        "[README.md](../README.md) has the short table.",
        "",
    ]
    for path, sub, ctx in walk(cmd):
        name = " ".join(path)
        out += [f"## `{name}`", "", command_help(sub), "", "```", usage(path, sub, ctx), "```", ""]
        if is_group(sub):
            out += ["Commands: " + ", ".join(f"`{name} {n}`" for n, _ in subcommands(sub, ctx)) + ".", ""]
        params = params_of(sub, ctx)
        if params:
            out += ["| argument / option | value | default | meaning |", "|---|---|---|---|"]
            out += [
                f"| {_names(p)} | {_cell(_value(p))} | {_cell(_default(p))} | {_cell(getattr(p, 'help', None) or '')} |"
                for p in params
            ]
            out.append("")
    return "\n".join(out)


def write_generated(path: Path, text: str, *, check: bool, regenerate: str) -> int:
    """Write a generated file, or with ``check`` only compare it; returns an exit status.

    Parameters
    ----------
    path : Path
        The generated file.
    text : str
        What it should hold.
    check : bool
        Compare instead of writing: 1 (and a line on stderr naming
        ``regenerate``) when the file differs, else 0.
    regenerate : str
        The command that rewrites the file, for the message.
    """
    current = path.read_text() if path.exists() else None
    if check:
        if current != text:
            print(f"{path} is stale: run {regenerate}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        with atomic_output(path) as tmp:
            tmp.write_text(text)
        print(f"wrote {path}")
    return 0


_ROLE = re.compile(r":(?:func|mod|class|data|meth|attr):`~?([^`]+)`")
_SECTION_LINE = re.compile(r"^-{3,}$")
#: numpydoc sections whose items are ``name : type`` lines with indented descriptions.
_ITEM_SECTIONS = ("Parameters", "Returns", "Yields", "Raises", "Attributes")


def _md_text(text: str) -> str:
    """reST inline markup as markdown: ````x```` and :func:`x` become `x`."""
    return _ROLE.sub(r"`\1`", text.replace("``", "`"))


def docstring_markdown(doc: str) -> str:
    """A numpydoc docstring as markdown: prose kept, sections as bold headings,
    parameters as a list (``- `name` (type): description``)."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    section = None
    item: list[str] | None = None

    def flush() -> None:
        nonlocal item
        if item:
            out.append(_md_text(item[0] + (": " + " ".join(item[1:]) if len(item) > 1 else "")))
        item = None

    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and _SECTION_LINE.match(lines[i + 1].strip()) and line.strip():
            flush()
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if section in _ITEM_SECTIONS and line.strip():
            if not line.startswith(" "):
                flush()
                name, _, kind = line.partition(" : ")
                head = f"`{name.strip()}`" if kind or section not in ("Returns", "Yields", "Raises") else ""
                kind_md = kind.strip() if kind else name.strip()
                item = [f"- {head} ({kind_md})" if head else f"- {kind_md}"]
            elif item is not None:
                item.append(line.strip())
        else:
            flush()
            out.append(_md_text(line))
        i += 1
    flush()
    text = "\n".join(out).strip()
    # Examples (>>> lines) as a code block; one blank line between blocks.
    text = re.sub(r"((?:^>>> .*\n?)+)", lambda m: "```python\n" + m.group(1).rstrip("\n") + "\n```\n", text, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _signature(fn: Any) -> str:
    """``name(a, b, c=1, *, d=None)``: the call without annotations (the types are below it)."""
    sig = inspect.signature(fn)
    plain = sig.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    return f"{fn.__name__}{plain}"


def render_api(module: Any = None) -> str:
    """The library reference as markdown: the module's docstring, then each name of
    its ``__all__`` in order (functions with their signature and docstring)."""
    if module is None:
        import importlib

        module = importlib.import_module("cmmsim.api")
    out = [
        "# Library reference",
        "",
        f"<!-- Generated by `python -m cmmsim.docgen` from the docstrings of {module.__name__}; do not edit.",
        "     tests/test_docs.py fails when this file is stale. -->",
        "",
        docstring_markdown(module.__doc__ or "").rstrip(),
        "",
        "Contents: " + ", ".join(f"[`{n}`](#{n.lower()})" for n in module.__all__) + ".",
        "",
    ]
    for name in module.__all__:
        obj = getattr(module, name)
        out += [f"## {name}", ""]
        if callable(obj):
            out += ["```python", _signature(obj), "```", "", docstring_markdown(obj.__doc__ or "").rstrip(), ""]
        elif isinstance(obj, dict):
            out += ["Keys: " + ", ".join(f"`{k}`" for k in obj) + ".", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the references; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m cmmsim.docgen", description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="where to write (default: docs/cli.md)")
    ap.add_argument(
        "--api-out",
        type=Path,
        default=DEFAULT_API_OUT,
        help="where to write the library reference (default: docs/api.md)",
    )
    ap.add_argument("--check", action="store_true", help="exit 1 if a file differs from a fresh generation")
    args = ap.parse_args(argv)
    cli = write_generated(args.out, render(), check=args.check, regenerate="python -m cmmsim.docgen")
    lib = write_generated(args.api_out, render_api(), check=args.check, regenerate="python -m cmmsim.docgen")
    return max(cli, lib)


if __name__ == "__main__":
    sys.exit(main())
