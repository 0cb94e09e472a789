"""The strategies and parameter grids a sweep runs, from the words that name them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cmmsim.tracer.errors import ParamError

__all__ = ["parse_grid", "strategy_grids"]


def parse_grid(pairs: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """``strategy:key=v1,v2`` strings -> {strategy: {key: [v1, v2]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    for pair in pairs:
        name, sep, rest = pair.partition(":")
        if not sep or "=" not in rest:
            raise ParamError(f"parameter grid {pair!r} is not of the form strategy:key=v1,v2")
        key, values = rest.split("=", 1)
        key = key.strip()
        listed = [v.strip() for v in values.split(",") if v.strip()]
        if not listed:
            raise ParamError(f"parameter grid {pair!r} gives no value")
        grid = out.setdefault(name, {})
        if key in grid:  # both values would be meant to run: say how to ask for that
            raise ParamError(
                f"parameter grid {name}:{key} given more than once: list its values in one "
                f"(-p {name}:{key}={','.join([*grid[key], *listed])})"
            )
        grid[key] = listed
    return out


def strategy_grids(
    names: Sequence[str], grid: Mapping[str, dict[str, list[str]]]
) -> list[tuple[str, dict[str, list[str]]]]:
    """The (strategy, parameter grid) pairs a sweep runs: those named, then any other a grid is given for.

    A grid names its strategy: ``-s host-lru -p cmm:reclaim_order=lru,state-priority``
    runs both (the grid is not dropped because ``-s`` did not repeat ``cmm``). With
    neither, the list is empty: every registered strategy runs. ``cmmsim sweep`` and
    :func:`cmmsim.api.sweep` both call this.
    """
    order = list(dict.fromkeys([*names, *grid]))
    return [(n, dict(grid.get(n, {}))) for n in order]
