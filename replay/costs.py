"""Cost profiles, and the pricing of result rows in time and CPU.

A *cost profile* says what each counted thing costs, in nanoseconds: every
key of :data:`COST_KEYS`, with its unit in its name. Profiles ship as TOML
files in ``replay/cost_profiles/`` (:func:`shipped`); a user's TOML file
overrides any subset of one of them (:func:`load_profile`). Every value and
its source is in ``docs/costs.md``.

Pricing (:func:`price`) is one set of polars expressions over the result
frame (:func:`cost_exprs`): every cost is linear in counters the rows
already hold, so old results are re-priced under another profile without a
replay. It adds:

=====================  =========================================================
stall_ns (float)       time the guests wait: host page-ins (disk and tier),
                       host fault handling and zero fills, discard faults and
                       every guest read (the re-read after a discard, a swap-in,
                       a refault of a page a balloon or guest reclaim dropped)
host_cpu_ns (float)    host CPU on memory management: fault handling, zero
                       fills, tier copies, hint handling, reclaim decisions,
                       balloon moves, working-set sampling
guest_cpu_ns (float)   guest CPU on it: issuing hints, discard-fault handling,
                       the balloon driver, the guest's own reclaim decisions
overhead_pct (float)   100 x (host_cpu_ns + guest_cpu_ns) / (duration_ns x
                       vcpus): the share of the guests' CPU time; null for a
                       trace without duration
disk_busy_ns (float)   device time of every disk page I/O, host and guest,
                       reads and (asynchronous) writes
wss_sampled_pages      pages the working-set estimator sampled (the
(int)                  ``sampling`` estimator of the balloons: periods x
                       ``sample_pages`` x guests)
cost_profile (str)     the profile's name
=====================  =========================================================

Host tiers: rows that carry ``host_reads_tier``, ``host_writes_tier`` and
``host_spills_tier`` (page-ins from, page-outs to and spills from a fast host
swap tier, :mod:`cmmsim.replay.kernels.tier`, beside the disk's ``host_reads``
and ``host_writes``) have them priced; rows without them price them as zero.
A page-in from the tier stalls its guest ``host_read_tier_ns`` (not the disk's
``host_read_disk_ns``); a spill takes the page out of the tier (host CPU, one
``host_read_tier_ns``) and writes it to disk (in ``host_writes``, at
``host_write_disk_ns``); a page-out to the tier is host CPU
(``host_write_tier_ns``). One reclaim decision is priced per frame reclaimed:
a spill is no frame.

Who chose: ``discards`` counts every frame dropped without I/O. Of those,
``discards_by_guest`` (clean pages a guest's own reclaim dropped: ``static``,
the balloons' guests) are a reclaim decision of guest CPU, as ``guest_writes``
are, and ``discards_released`` (frames the guest gave up: a backed free frame a
balloon takes, a page of a free page report) take no decision at all: the
balloon move or the hint is priced. The rest are the host's decisions.
``balloon_initial_pages`` (the balloons' sizing at the first event, the
replay's initial condition) are left out of the balloon moves priced. Rows
without these columns (written before them) price them as zero: as before,
with those drops as host decisions and the first sizing as moves.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cmmsim.tracer.errors import ParamError

__all__ = [
    "COST_KEYS",
    "CostProfile",
    "DEFAULT_PROFILE",
    "PRICE_COLUMNS",
    "PRICING_KEY",
    "PROFILE_DIR",
    "TIER_COLUMNS",
    "cost_exprs",
    "load_profile",
    "price",
    "priced",
    "pricing_digest",
    "profile_of",
    "shipped",
]

PROFILE_DIR = Path(__file__).parent / "cost_profiles"
#: The profile used when none is named.
DEFAULT_PROFILE = "kvm-2025"

#: Every cost key: what one unit of it is, ns each.
COST_KEYS: dict[str, str] = {
    "host_read_disk_ns": "a host page-in from its swap disk: device latency the guest waits",
    "host_read_tier_ns": "a host page-in from the fast tier: a synchronous copy or decompression",
    "host_write_disk_ns": "a host page-out to its swap disk: device time (asynchronous)",
    "host_write_tier_ns": "a host page-out to the fast tier: host CPU to copy or compress",
    "host_fault_ns": "the host's handling of one fault on a guest page (without I/O or zeroing)",
    "zero_fill_ns": "clearing one 4 KiB frame",
    "guest_read_ns": "a guest page read from its own disk (file or swap): device latency",
    "guest_write_ns": "a guest page write to its own disk (swap-out): device time (asynchronous)",
    "discard_fault_ns": "delivering a discard fault and the guest's handler, without the read",
    "hint_guest_ns": "one hint operation (ESSA), guest side",
    "hint_host_ns": "one hint operation, host side",
    "balloon_page_guest_ns": "one page inflated or deflated, guest side (allocation, driver)",
    "balloon_page_host_ns": "one page inflated or deflated, host side (unmap, release)",
    "reclaim_decision_ns": "choosing one victim page (scan per page reclaimed)",
    "wss_sample_page_ns": "one page sampled by the working-set estimator",
}
#: The counters of a fast host tier, priced when a result frame has them.
TIER_COLUMNS = ("host_reads_tier", "host_writes_tier", "host_spills_tier")
#: The columns :func:`price` adds.
PRICE_COLUMNS = (
    "stall_ns",
    "host_cpu_ns",
    "guest_cpu_ns",
    "overhead_pct",
    "disk_busy_ns",
    "wss_sampled_pages",
    "cost_profile",
)
_META_KEYS = ("base", "name", "description")


@dataclass(frozen=True)
class CostProfile:
    """A complete cost profile.

    Attributes
    ----------
    name : str
        Shipped name, or a file's ``name`` (default: its stem).
    costs_ns : dict of str to float
        Every key of :data:`COST_KEYS`, ns per event.
    description : str
        One line: what world it describes.
    """

    name: str
    costs_ns: dict[str, float]
    description: str = ""


def shipped() -> list[str]:
    """Names of the profiles that ship with cmmsim."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ParamError(f"{path}: no such cost profile file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"{path}: cannot read the cost profile ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParamError(f"{path}: not valid TOML ({exc})") from None


def _costs_of(doc: dict[str, Any], where: Path | str) -> dict[str, float]:
    """The cost keys of a profile document, checked: known, numeric, 0 to 2^63 ns."""
    out: dict[str, float] = {}
    for key, value in doc.items():
        if key in _META_KEYS:
            continue
        if key not in COST_KEYS:
            raise ParamError(f"{where}: unknown cost key {key!r} (the keys are in docs/costs.md)")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ParamError(f"{where}: {key} = {value!r}: a cost is a number of ns")
        if value < 0:
            raise ParamError(f"{where}: {key} = {value!r}: a cost cannot be negative")
        if value > 2.0**63:
            # The longest time cmmsim represents; counts times more overflow priced figures to inf.
            raise ParamError(f"{where}: {key} = {value!r}: a cost cannot exceed 2^63 ns")
        out[key] = float(value)
    return out


def _shipped_profile(name: str) -> CostProfile:
    path = PROFILE_DIR / f"{name}.toml"
    doc = _read_toml(path)
    costs = _costs_of(doc, path)
    missing = [k for k in COST_KEYS if k not in costs]
    if missing:  # a shipped profile is complete: a test holds them to it
        raise ParamError(f"{path}: cost profile lacks {', '.join(missing)}")
    return CostProfile(name, costs, str(doc.get("description", "")))


def load_profile(spec: str | Path | CostProfile | None = None) -> CostProfile:
    """A cost profile by shipped name or from a TOML file.

    Parameters
    ----------
    spec : str, path, CostProfile or None
        None: :data:`DEFAULT_PROFILE`. A shipped name (:func:`shipped`). A
        CostProfile, returned once checked (every key, none unknown, each a
        number of ns from 0 to 2^63). Or a
        TOML file holding any subset of the cost keys, which override its
        ``base`` profile (a shipped name; default :data:`DEFAULT_PROFILE`); it
        may also set ``name`` (default: the file's stem) and ``description``.

    Raises
    ------
    cmmsim.tracer.errors.ParamError
        An unknown name, a missing or malformed file, an unknown key, a cost
        that is negative or not a number, a file named as a shipped profile
        whose costs differ from it: one line naming the file and key.
    """
    if isinstance(spec, CostProfile):
        _costs_of(spec.costs_ns, f"cost profile {spec.name!r}")
        missing = [k for k in COST_KEYS if k not in spec.costs_ns]
        if missing:
            raise ParamError(f"cost profile {spec.name!r} lacks {', '.join(missing)}")
        return spec
    if spec is None:
        return _shipped_profile(DEFAULT_PROFILE)
    text = str(spec)
    if text in shipped():
        return _shipped_profile(text)
    path = Path(text)
    if not text or path.suffix != ".toml" and not path.exists():
        raise ParamError(f"unknown cost profile {text!r} (shipped: {', '.join(shipped())}; or a .toml file)")
    doc = _read_toml(path)
    base = doc.get("base", DEFAULT_PROFILE)
    if base not in shipped():
        raise ParamError(f"{path}: base = {base!r} is not a shipped profile ({', '.join(shipped())})")
    for key in ("name", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise ParamError(f"{path}: {key} must be a string")
    parent = _shipped_profile(base)
    costs = parent.costs_ns | _costs_of(doc, path)
    name = doc.get("name", path.stem)
    if not name or "\n" in name or "\r" in name:
        raise ParamError(f"{path}: name must be one non-empty line, got {name!r}")
    if name in shipped():
        # Rows carry only the name: under a shipped one they would pass for its prices.
        differ = [k for k, v in _shipped_profile(name).costs_ns.items() if costs[k] != v]
        if differ:
            raise ParamError(
                f"{path}: {name!r} is the name of a shipped profile, whose {', '.join(differ)} "
                f'differ from this file\'s: give it another name (name = "...")'
            )
    return CostProfile(name, costs, doc.get("description", f"{parent.name} with {path.name}"))


def _counter(columns: list[str], name: str) -> pl.Expr:
    """A counter column as float, or 0 where the frame does not carry it (tiers, the
    discards' kinds): in a column, null too (the rows of older parts a sweep folder's
    frames were concatenated with)."""
    return pl.col(name).cast(pl.Float64).fill_null(0.0) if name in columns else pl.lit(0.0)


def _sampled_pages(columns: list[str]) -> pl.Expr:
    """Pages the ``sampling`` working-set estimator samples: ``sample_pages`` per guest
    and period, periods counted as the balloons count them
    (:func:`cmmsim.replay.strategies.balloon.params.setup`: duration // period_ns + 1)."""
    if "params" not in columns or "duration_ns" not in columns:
        return pl.lit(0, dtype=pl.Int64)
    params = pl.col("params")
    period = params.str.json_path_match("$.period_ns").cast(pl.Int64, strict=False)
    per_period = params.str.json_path_match("$.sample_pages").cast(pl.Int64, strict=False)
    guests = pl.col("guests") if "guests" in columns else pl.lit(1)
    sampled = (pl.col("duration_ns") // period + 1) * per_period * guests
    return (
        pl.when(params.str.json_path_match("$.estimator") == "sampling")
        .then(sampled)
        .otherwise(0)
        .fill_null(0)
        .cast(pl.Int64)
    )


def cost_exprs(profile: CostProfile, columns: list[str]) -> dict[str, pl.Expr]:
    """The pricing: one expression per column :func:`price` adds.

    Parameters
    ----------
    profile : CostProfile
        Costs, ns per event.
    columns : list of str
        The result frame's columns (tier counters, ``duration_ns`` and
        ``vcpus`` are priced when present).
    """
    c = profile.costs_ns

    def n(name: str) -> pl.Expr:
        return _counter(columns, name)

    tier_reads, tier_writes = n("host_reads_tier"), n("host_writes_tier")
    spills = n("host_spills_tier")
    host_faults = n("host_reads") + tier_reads + n("zero_fills") + n("discard_faults")
    # Frames the host chose to reclaim: a spill (in host_writes too) moves a page from
    # tier to disk; a discard the guest chose is the guest's decision, and a frame the
    # guest gave up (a balloon's take, a free page report) is dropped without one.
    guest_discards = n("discards_by_guest")
    host_evictions = n("host_writes") - spills + tier_writes + n("discards") - guest_discards - n("discards_released")
    # The balloons' first sizing is the replay's initial condition: not priced.
    balloon_pages = n("balloon_inflated_pages") - n("balloon_initial_pages") + n("balloon_deflated_pages")
    sampled = _sampled_pages(columns)
    # Synchronous work the guest waits for: the fault path, reads, zero fills.
    stall = (
        n("host_reads") * c["host_read_disk_ns"]
        + tier_reads * c["host_read_tier_ns"]
        + host_faults * c["host_fault_ns"]
        + n("zero_fills") * c["zero_fill_ns"]
        + n("discard_faults") * c["discard_fault_ns"]
        + n("guest_reads") * c["guest_read_ns"]
    )
    host_cpu = (
        host_faults * c["host_fault_ns"]
        + n("zero_fills") * c["zero_fill_ns"]
        + (tier_reads + spills) * c["host_read_tier_ns"]
        + tier_writes * c["host_write_tier_ns"]
        + n("hints") * c["hint_host_ns"]
        + host_evictions * c["reclaim_decision_ns"]
        + balloon_pages * c["balloon_page_host_ns"]
        + sampled.cast(pl.Float64) * c["wss_sample_page_ns"]
    )
    guest_cpu = (
        n("hints") * c["hint_guest_ns"]
        + n("discard_faults") * c["discard_fault_ns"]
        + balloon_pages * c["balloon_page_guest_ns"]
        + (n("guest_writes") + guest_discards) * c["reclaim_decision_ns"]
    )
    disk = (
        n("host_reads") * c["host_read_disk_ns"]
        + n("host_writes") * c["host_write_disk_ns"]
        + n("guest_reads") * c["guest_read_ns"]
        + n("guest_writes") * c["guest_write_ns"]
    )
    if "duration_ns" in columns and "vcpus" in columns:
        capacity = pl.col("duration_ns").cast(pl.Float64) * pl.col("vcpus").cast(pl.Float64)
        overhead = pl.when(capacity > 0).then(100.0 * (host_cpu + guest_cpu) / capacity).otherwise(None)
    else:
        overhead = pl.lit(None, dtype=pl.Float64)
    return {
        "stall_ns": stall,
        "host_cpu_ns": host_cpu,
        "guest_cpu_ns": guest_cpu,
        "overhead_pct": overhead,
        "disk_busy_ns": disk,
        "wss_sampled_pages": sampled,
        "cost_profile": pl.lit(profile.name, dtype=pl.String),
    }


def price(results: pl.DataFrame, profile: str | Path | CostProfile | None = None) -> pl.DataFrame:
    """``results`` with the time and CPU columns (module docstring) under ``profile``.

    Columns an earlier pricing added are replaced: pricing again under
    another profile re-prices, and pricing twice under one gives the same frame.

    Parameters
    ----------
    results : polars.DataFrame
        A result frame (:mod:`cmmsim.replay.frames`), possibly from an older cmmsim:
        without ``duration_ns`` or ``vcpus`` its ``overhead_pct`` is null.
    profile : str, path, CostProfile or None
        See :func:`load_profile`.
    """
    prof = load_profile(profile)
    base = results.drop([c for c in PRICE_COLUMNS if c in results.columns])
    exprs = cost_exprs(prof, base.columns)
    return base.with_columns(**exprs)


#: The key of a result file's Parquet metadata that holds its rows' :func:`pricing_digest`.
PRICING_KEY = "cmmsim.pricing"


def pricing_digest(profile: CostProfile, columns: list[str]) -> str:
    """A hash of how rows with ``columns`` are priced under ``profile``: its name, its
    costs and the pricing's expressions (:func:`cost_exprs`).

    Rows whose digests are equal carry equal prices, so a sweep run again tells a
    part priced otherwise (another profile, an edited file, a pricing changed since)
    from the digest written beside it, without reading or re-pricing its rows.

    Parameters
    ----------
    profile : CostProfile
        Costs, ns per event.
    columns : list of str
        The result frame's columns (priced columns are left out, as :func:`price` does).
    """
    base = [c for c in columns if c not in PRICE_COLUMNS]
    exprs = cost_exprs(profile, base)
    # repr of the costs: the expressions' text may round a float.
    text = repr((profile.name, sorted(profile.costs_ns.items()), sorted((k, str(e)) for k, e in exprs.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def profile_of(results: pl.DataFrame) -> str | None:
    """The one profile every row of ``results`` was priced under, or None
    (unpriced rows, or rows priced under several)."""
    if "cost_profile" not in results.columns or results.is_empty():
        return None
    names = results["cost_profile"].unique().to_list()
    return names[0] if len(names) == 1 and names[0] is not None else None


def priced(results: pl.DataFrame, profile: str | Path | CostProfile | None = None) -> tuple[pl.DataFrame, str]:
    """Rows priced under one profile: ``profile`` if given, else as they were
    priced when that was one profile, else :data:`DEFAULT_PROFILE`.

    Returns
    -------
    (polars.DataFrame, str)
        The rows, and the profile's name.
    """
    if profile is None:
        name = profile_of(results)
        if name is not None:
            return results, name
    prof = load_profile(profile)
    return price(results, prof), prof.name
