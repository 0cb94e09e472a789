"""Write ``docs/cli.md``, the command-line reference, from the command tree itself.

    python -m cmmsim.docgen            # rewrite docs/cli.md
    python -m cmmsim.docgen --check    # exit 1 if docs/cli.md is stale

The reference is built from click's view of the typer app (what ``--help``
prints), not from rich's help screens: plain markdown, no colour, no boxes,
no terminal width, commands in alphabetical order, so the same code gives
the same bytes on any machine. A test holds the committed file to a fresh
generation.
"""

from __future__ import annotations

import argparse
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
    return [p for p in cmd.get_params(ctx)
            if not getattr(p, "hidden", False) and not help_names & set(p.opts)]


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
            out += [f"| {_names(p)} | {_cell(_value(p))} | {_cell(_default(p))} | "
                    f"{_cell(getattr(p, 'help', None) or '')} |" for p in params]
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


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the reference; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m cmmsim.docgen", description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="where to write (default: docs/cli.md)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file differs from a fresh generation")
    args = ap.parse_args(argv)
    return write_generated(args.out, render(), check=args.check, regenerate="python -m cmmsim.docgen")


if __name__ == "__main__":
    sys.exit(main())
