"""Colours, markers, line styles and labels shared by every plot.

A strategy keeps one colour and one marker in every figure: both come from
its place in the strategy registry (:func:`cmmsim.replay.strategies.names`,
alphabetical), so :func:`strategy_style` is a pure function of the name. A
name the registry does not know (results written by another version) gets a
grey tone and a marker picked by a CRC of the name: stable too, and visibly
not one of the registered strategies.

Line styles differ between neighbours in the registry, and markers are
drawn hollow, so two strategies with the same numbers still show as two
lines (a dashed line over a solid one, two marker shapes on one point).
"""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cmmsim.tracer.schema import PAGE_SIZE_BYTES

#: Okabe-Ito colours (colour-blind safe), then Tableau's for the rest.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#000000",
    "#56B4E9",
    "#8C564B",
    "#7F7F00",
    "#9467BD",
    "#17BECF",
    "#BCBD22",
)
#: Tones for strategies the registry does not know.
UNKNOWN_PALETTE = ("#7f7f7f", "#a6a6a6", "#595959", "#bfbfbf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
#: Solid, dashed, dash-dot, dotted, long dash, dash-dot-dot: neighbours differ.
LINESTYLES = ("-", (0, (5, 2)), (0, (6, 2, 1, 2)), (0, (1, 1.5)), (0, (10, 3)), (0, (4, 1.5, 1, 1.5, 1, 1.5)))
#: Line styles for further parameter sets of one strategy in one figure.
VARIANT_LINESTYLES = ((0, (2, 2)), (0, (8, 2, 2, 2)), (0, (1, 3)), (0, (12, 4)))

#: Guest state (S/U/V/P) x host state (r/p/z), the order of the stacked state plots.
PAIR_ORDER = ["Sr", "Sp", "Sz", "Ur", "Uz", "Vr", "Vz", "Pr"]
PAIR_COLOURS = {
    "Sr": "#1f4e79",
    "Sp": "#5b9bd5",
    "Sz": "#bdd7ee",
    "Ur": "#7f6000",
    "Uz": "#ffd966",
    "Vr": "#375623",
    "Vz": "#a9d18e",
    "Pr": "#c00000",
}
#: Longest short label of a parameter set before it is cut (characters).
MAX_LABEL_CHARS = 42


@dataclass(frozen=True)
class Style:
    """How one strategy's line looks: matplotlib colour, marker and line style."""

    colour: str
    marker: str
    linestyle: object

    def kwargs(self) -> dict:
        """Keyword arguments for ``Axes.plot``: hollow markers so shapes under shapes show."""
        return {
            "color": self.colour,
            "marker": self.marker,
            "linestyle": self.linestyle,
            "markerfacecolor": "none",
            "markeredgecolor": self.colour,
            "markersize": 5,
            "markeredgewidth": 1.1,
            "linewidth": 1.4,
        }


def _registry() -> list[str]:
    from cmmsim.replay.strategies import names

    return names()


def base_strategy(label: str) -> str:
    """The strategy of a report label (``cmm[reclaim_order=lru]`` -> ``cmm``)."""
    return label.split("[", 1)[0]


def strategy_style(name: str) -> Style:
    """The fixed colour, marker and line style of strategy ``name`` (a pure function of it).

    A report label with parameters (``cmm[...]``) is styled as its strategy.
    """
    name = base_strategy(name)
    known = _registry()
    if name in known:
        i = known.index(name)
        return Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])
    h = zlib.crc32(name.encode())
    return Style(UNKNOWN_PALETTE[h % len(UNKNOWN_PALETTE)], MARKERS[h % len(MARKERS)], "-")


def label_order(labels) -> list[str]:
    """Labels in registry order of their strategy (unknown ones last), then by label."""
    known = _registry()

    def key(label: str):
        base = base_strategy(label)
        return (known.index(base) if base in known else len(known), base, label != base, label)

    return sorted(set(labels), key=key)


def line_styles(labels) -> dict[str, dict]:
    """``Axes.plot`` keyword arguments per label for one figure.

    Colour and marker are the strategy's (:func:`strategy_style`); the
    default-parameter line keeps the strategy's line style and further
    parameter sets of the same strategy take the variant styles in label order.
    """
    out: dict[str, dict] = {}
    seen: dict[str, int] = {}
    for label in label_order(labels):
        base = base_strategy(label)
        kw = strategy_style(base).kwargs()
        if label != base:
            n = seen[base] = seen.get(base, -1) + 1
            kw["linestyle"] = VARIANT_LINESTYLES[n % len(VARIANT_LINESTYLES)]
        out[label] = kw
    return out


def mib(pages) -> float:
    """Pages (4 KiB) as MiB."""
    return pages * PAGE_SIZE_BYTES / (1 << 20)


def slug(text: str) -> str:
    """``text`` made safe as part of a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def name_slug(text: str) -> str:
    """A user's name (a trace set's) made safe as part of a file name; one that had to
    change gets a short hash of it, so "a/b" and "a_b" never share a file."""
    safe = slug(text)
    return safe if safe == text else f"{safe}-{zlib.crc32(text.encode()):08x}"


def _duration(ns: int) -> str:
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if abs(ns) >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns} ns"


def short_value(key: str, value) -> str:
    """A parameter value in its unit: ``period_ns`` 50000000 -> ``50 ms``."""
    if isinstance(value, list | tuple):
        return "/".join(short_value(key, v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key.endswith("_ns"):
        return _duration(int(value))
    if key.endswith("_pages"):
        return f"{mib(value):g} MiB"
    if key.endswith("_pct"):
        return f"{value:g} %"
    return f"{value:g}"


def short_key(key: str) -> str:
    """A parameter name without its unit suffix, spaced: ``period_ns`` -> ``period``."""
    return re.sub(r"_(ns|pages|pct|mib)$", "", key).replace("_", " ")


def short_params(strategy: str, params_json: str | None) -> str:
    """The parameters that differ from ``strategy``'s defaults, short:
    ``period 50 ms, target 0.9`` (``defaults`` when none differ).

    Cut to :data:`MAX_LABEL_CHARS` with an ellipsis.
    """
    from cmmsim.replay.strategies import strategies
    from cmmsim.tracer import params as params_mod

    params = json.loads(params_json) if params_json else {}
    strat = strategies().get(strategy)
    defaults = params_mod.as_dict(strat.params()) if strat else {}
    diff = {k: v for k, v in params.items() if defaults.get(k) != v}
    if not diff:
        return "defaults"
    text = ", ".join(f"{short_key(k)} {short_value(k, v)}" for k, v in sorted(diff.items()))
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def short_label(strategy: str, params_json: str | None) -> str:
    """``strategy`` alone with default parameters, else ``strategy (short params)``."""
    p = short_params(strategy, params_json)
    return strategy if p == "defaults" else f"{strategy} ({p})"


@contextlib.contextmanager
def all_or_nothing(out_dir: str | Path) -> Iterator[list[Path]]:
    """A list to append the figures written into ``out_dir`` to, all or nothing.

    When the block fails (a full disk), the figures listed so far are removed,
    and ``out_dir`` too if it was made here: a failed plot run leaves nothing.
    """
    out = Path(out_dir)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        yield paths
    except BaseException:
        for p in paths:
            p.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
