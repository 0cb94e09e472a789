"""``cmmsim trace ...``: make, convert, inspect and validate traces.

Library modules are imported inside each command, not here: ``cmmsim --help``
and every other command then start without loading what they do not use
(numba and the converter's kernels above all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cmmsim.cli_common import QUIET_HELP, app, cli_errors, console, print_params, print_table
from cmmsim.tracer.errors import CmmsimError, ParamError, show_path

trace_app = typer.Typer(help="Make, convert, inspect and validate traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("synth")
@cli_errors
def trace_synth(
    workload: Annotated[str, typer.Argument(help="workload name (see `cmmsim trace workloads`)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output .parquet (a folder for awm and fleet)")],
    seed: Annotated[int, typer.Option(help="random seed; same seed, same bytes")] = 0,
    events: Annotated[
        int | None,
        typer.Option(help="stop after this many events (split among guests) instead of at the workload's duration_s"),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="workload parameter key=value (each key once)")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(help="guests generated at once (default: one per CPU); the output does not depend on it"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Generate a synthetic guest trace (or a multi-guest scenario folder).

    Progress is in guest time simulated (summed over guests), or in events with --events.
    """
    from cmmsim.progress import Reporter

    reporter = Reporter(quiet=quiet)  # before the generator's modules: importing them compiles
    from cmmsim.tracer.io import check_output, folder_output
    from cmmsim.tracer.params import INT64_MAX
    from cmmsim.tracer.synth import get_workload, plan, synthesize

    if not 0 <= seed <= INT64_MAX:
        raise ParamError(f"--seed {seed}: must be 0..{INT64_MAX:,}")
    if events is not None and not 0 < events <= INT64_MAX:
        raise ParamError(f"--events {events}: must be 1..{INT64_MAX:,}")
    if jobs is not None and jobs < 1:
        raise ParamError(f"--jobs {jobs}: must be at least 1")
    multi = get_workload(workload).multi_guest
    check_output(out, folder=multi)

    # Bounded by duration_s, guest time is the measure of what is done (events
    # come in bursts); it goes in 1/1024 s steps: their sums are exact in a float,
    # so all of it done is 100 %.
    def steps(ns: int) -> int:
        return (ns << 10) // 10**9

    total_ns = 0
    if events is None:
        total_ns = sum(gp.duration_ns for gp in plan(workload, seed=seed, params=param or [])[2])
    task_args = {"total": steps(total_ns) / 1024, "unit": "s simulated"} if events is None else {"total": events}
    with folder_output(out if multi else out.parent), reporter.task(f"synth {workload}", **task_args) as task:
        guest_ns_done = steps_shown = 0

        def on_chunk(n: int, guest_ns: int) -> None:
            nonlocal guest_ns_done, steps_shown
            if events is not None:
                task.advance(n)
                return
            guest_ns_done += guest_ns
            now = steps(guest_ns_done)
            task.advance((now - steps_shown) / 1024)
            steps_shown = now

        paths = synthesize(workload, out, seed=seed, events=events, params=param or [], jobs=jobs, on_chunk=on_chunk)
    for p in paths:
        console.print(f"wrote {p}")


@trace_app.command("workloads")
@cli_errors
def trace_workloads() -> None:
    """List the synthetic workloads with their parameters and defaults."""
    from cmmsim.tracer.synth import workloads

    for wl in workloads().values():
        print_params(f"{wl.name}: {wl.summary}", wl.params)


@trace_app.command("info")
@cli_errors
def trace_info(
    paths: Annotated[list[Path], typer.Argument(help="trace files or scenario folders (each guest's trace)")],
) -> None:
    """Show events by op, duration, distinct pages and final guest-state fractions.

    One block per guest trace; for several, a last line with their totals.
    """
    from cmmsim.replay.scenario import expand_inputs

    files = expand_inputs(paths)
    infos = [_print_info(path) for path in files]
    if len(infos) > 1:
        console.print(
            f"[bold]total[/bold]  {len(infos)} traces, {sum(i['events'] for i in infos):,} events, "
            f"{sum(i['guest_pages'] for i in infos):,} guest pages, "
            f"{sum(i['distinct_pages'] for i in infos):,} distinct pages"
        )


def _print_info(path: Path) -> dict[str, Any]:
    """The block of ``trace info`` for one trace file; returns its summary."""
    from cmmsim.traces import trace_summary

    info = trace_summary(path)
    console.print(f"[bold]{path}[/bold]  source={info['source']}  seed={info['seed']}")
    if info["hints"] == "none":
        console.print(
            "no hints: an imported trace holds accesses only; only host policies "
            "(host-lru, static, opt, ...) are meaningful on it (docs/exchange.md)"
        )
    print_table(
        "trace", [{k: info[k] for k in ("events", "duration_s", "events_per_s", "guest_pages", "distinct_pages")}]
    )
    print_table("events by op", [{"op": k, "events": v} for k, v in info["event_counts"].items()])
    print_table(
        "final guest states (fraction of guest pages)",
        [{"state": k, "fraction": v} for k, v in info["final_state_fractions"].items()],
    )
    if info["converter"]:
        from cmmsim.tracer.linux.counters import fidelity_lines

        print_table("converter counters", [{"counter": k, "value": str(v)} for k, v in info["converter"].items()])
        for line in fidelity_lines(info["converter"]):
            console.print(f"converter: {line}")
    if info["sampling"] is not None:
        from cmmsim.tracer.linux.sampling import sampling_lines

        for line in sampling_lines(info["sampling"], info["converter"] or {}):
            console.print(f"sampling: {line}")
    return info


@trace_app.command("validate")
@cli_errors
def trace_validate(
    paths: Annotated[list[Path], typer.Argument(help="trace files or scenario folders (each guest's trace)")],
) -> None:
    """Check traces against the schema; the first bad row is named."""
    from cmmsim.replay.scenario import expand_inputs
    from cmmsim.tracer.io import validate_trace

    for path in expand_inputs(paths):
        meta = validate_trace(path)
        console.print(f"{path}: ok ({meta.n_events:,} events, {meta.guest_pages:,} guest pages)")


@trace_app.command("convert")
@cli_errors
def trace_convert(
    inp: Annotated[
        str,
        typer.Argument(
            metavar="INPUT", help="perf script / trace-cmd / ftrace text (.gz .xz .bz2 .zst ok; - for stdin)"
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="output .parquet (default: INPUT with .parquet)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, perf, trace-cmd or ftrace")] = "auto",
    guest_mib: Annotated[
        int | None,
        typer.Option(
            help="guest memory, MiB (default: as many pages as the distinct frames the trace names); it sets, "
            "by construction, what a % budget is a share of and how much of the guest the trace never names"
        ),
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="skip and count malformed lines instead of stopping")
    ] = False,
    start: Annotated[
        Path | None, typer.Option(help="start snapshots `trace record --keep-text` kept (TEXT.start.npz)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Convert Linux page-allocator and page-cache tracepoint text to a trace."""
    from cmmsim.progress import Reporter

    reporter = Reporter(quiet=quiet)  # before the converter's modules: importing them compiles
    from cmmsim.tracer.io import check_output
    from cmmsim.tracer.linux import convert
    from cmmsim.tracer.record import read_start

    if out is None:
        if inp == "-":
            raise CmmsimError("reading stdin needs -o OUT.parquet")
        base = Path(inp)
        for suffix in (".gz", ".xz", ".bz2", ".zst", ".txt"):
            base = base.with_name(base.name.removesuffix(suffix))
        out = base.with_name(base.name + ".parquet")
    check_output(out, inputs=[] if inp == "-" else [inp])
    pages = _guest_pages(guest_mib)
    states, mapped = read_start(start) if start else (None, None)
    # Bytes as read (decompressed): the file's size is the total of plain input only.
    size = None
    if inp != "-" and not inp.lower().endswith((".gz", ".xz", ".bz2", ".zst")):
        size = Path(inp).stat().st_size if Path(inp).is_file() else None
    with reporter.task("convert", total=size, unit="bytes") as task:
        meta = convert(
            inp,
            out,
            fmt=fmt,
            lenient=lenient,
            guest_pages=pages,
            initial=states,
            initial_pages=mapped,
            on_bytes=task.advance,
        )
    _print_conversion(out, meta)


def _guest_pages(guest_mib: int | None) -> int | None:
    """``--guest-mib`` in pages (None: not given); refused unless a trace can hold it."""
    from cmmsim.tracer.schema import MAX_GUEST_PAGES, PAGE_SIZE_BYTES

    if guest_mib is None:
        return None
    most = MAX_GUEST_PAGES * PAGE_SIZE_BYTES >> 20
    if not 1 <= guest_mib <= most:
        raise ParamError(f"--guest-mib {guest_mib}: must be 1..{most:,}")
    return guest_mib * ((1 << 20) // PAGE_SIZE_BYTES)


def _print_conversion(out: Path, meta: Any) -> None:
    conv = meta.converter
    console.print(
        f"wrote {out} ({meta.n_events:,} events, {conv['frames']:,} frames, {meta.guest_pages:,} guest pages)"
    )
    rows = [{"counter": k, "value": str(v)} for k, v in conv.items() if v not in (0, {}, [])]
    print_table("converter counters", rows)
    from cmmsim.tracer.linux.counters import fidelity_lines

    for line in fidelity_lines(conv):
        console.print(f"converter: {line}")


@trace_app.command("record")
@cli_errors
def trace_record(
    out: Annotated[Path, typer.Option("-o", "--out", help="output .parquet")],
    command: Annotated[list[str] | None, typer.Argument(help="command to run while recording (after --)")] = None,
    duration: Annotated[float | None, typer.Option(help="record the whole system this many seconds instead")] = None,
    buffer_pages: Annotated[int, typer.Option(help="perf ring buffer per CPU, pages (-m)")] = 4096,
    keep_text: Annotated[Path | None, typer.Option(help="also keep the perf script text here")] = None,
    guest_mib: Annotated[int | None, typer.Option(help="guest memory to record, MiB (default: MemTotal)")] = None,
    drop_caches: Annotated[
        bool,
        typer.Option(
            "--drop-caches",
            help="drop the page cache first, so the pages the workload reads enter it inside the capture",
        ),
    ] = False,
    sample_period: Annotated[
        float | None,
        typer.Option(
            help="sample the command's accesses every this many seconds (0.1-1 typical; off by default; root; see docs/sampling.md): per mapping touched pages from smaps Referenced after clear_refs, emitted on its present frames; the period sets how many re-accesses the trace holds, by construction (docs/fidelity.md)"
        ),
    ] = None,
    sample_seed: Annotated[int, typer.Option(help="seeds which frames of a partly referenced mapping are emitted")] = 0,
) -> None:
    """Record a live workload with perf (root) and convert it to a trace."""
    from cmmsim.tracer.io import check_output
    from cmmsim.tracer.record import record

    check_output(out)
    if keep_text is not None:
        check_output(keep_text)
    meta = record(
        out,
        command,
        duration_s=duration,
        buffer_pages=buffer_pages,
        keep_text=keep_text,
        guest_pages=_guest_pages(guest_mib),
        drop_caches=drop_caches,
        sample_period_s=sample_period,
        sample_seed=sample_seed,
    )
    _print_conversion(out, meta)


@trace_app.command("export")
@cli_errors
def trace_export(
    path: Annotated[Path, typer.Argument(help="cmmsim trace (.parquet)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output file")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv, txt or oracle-general (libCacheSim's formats; docs/exchange.md)")
    ],
    time_unit: Annotated[
        str, typer.Option(help="unit of the written times: s (libCacheSim's), ms, us or ns; truncated to whole units")
    ] = "s",
) -> None:
    """Write a trace's accesses as 4 KiB objects in a libCacheSim trace format."""
    from cmmsim.tracer.exchange import export_trace
    from cmmsim.tracer.io import check_output

    check_output(out, inputs=[path])
    s = export_trace(path, out, fmt, time_unit=time_unit)
    console.print(
        f"wrote {out} ({s.requests:,} requests, {s.objects:,} objects of 4 KiB; "
        f"{s.skipped_hints:,} hint events left out)"
    )


@trace_app.command("import")
@cli_errors
def trace_import(
    path: Annotated[Path, typer.Argument(help="libCacheSim trace (.gz .xz .bz2 .zst ok)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output .parquet")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv, txt or oracle-general (libCacheSim's formats; docs/exchange.md)")
    ],
    time_col: Annotated[int, typer.Option(help="csv: column of the time, from 1 (0: none)")] = 1,
    obj_id_col: Annotated[int, typer.Option(help="csv: column of the object id, from 1")] = 2,
    obj_size_col: Annotated[
        int, typer.Option(help="csv: column of the object size in bytes, from 1 (0: none, one page each)")
    ] = 3,
    delimiter: Annotated[str, typer.Option(help="csv: field delimiter, one character")] = ",",
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="csv: first line is a header (default: guessed from the first line)"),
    ] = None,
    time_unit: Annotated[str, typer.Option(help="unit of the input's times: s, ms, us or ns")] = "s",
    request_ns: Annotated[
        int,
        typer.Option(
            help="ns between requests when the input has no times; sets the trace's duration (and every per-second figure) by construction"
        ),
    ] = 1000,
) -> None:
    """Read a libCacheSim trace as a guest trace of accesses only (no hints)."""
    from cmmsim.tracer.exchange import CsvLayout, import_trace
    from cmmsim.tracer.io import check_output

    check_output(out, inputs=[path])
    layout = CsvLayout(
        time_col=time_col, obj_id_col=obj_id_col, obj_size_col=obj_size_col, delimiter=delimiter, header=header
    )
    s = import_trace(path, out, fmt, layout=layout, time_unit=time_unit, request_ns=request_ns)
    console.print(
        f"wrote {out} ({s.events:,} events from {s.requests:,} requests, {s.objects:,} objects "
        f"on {s.guest_pages:,} guest pages)"
    )
    if s.size_zero_skipped:
        console.print(f"skipped {s.size_zero_skipped:,} requests of size 0 (as libCacheSim does)")
    if s.time_repaired:
        console.print(f"{s.time_repaired:,} requests stepped back in time: given the time before them")
    console.print("no hints: only host policies (host-lru, static, opt, ...) are meaningful on this trace")


@trace_app.command("compare")
@cli_errors
def trace_compare(
    a: Annotated[Path, typer.Argument(help="first trace file (e.g. a synthetic trace)")],
    b: Annotated[Path, typer.Argument(help="second trace file (e.g. a real capture)")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="write the distance table here (.parquet or .csv)")
    ] = None,
    points: Annotated[
        int, typer.Option(help="time points of the curves over time (fractions of each trace's duration)")
    ] = 20,
) -> None:
    """Put two traces side by side: reuse distance, op mix, rates, footprint and states, with a distance each."""
    from cmmsim.cli_common import check_outputs, write_frames
    from cmmsim.compare import df_distances, df_profile, df_reuse_histogram, trace_profile

    if not 1 <= points <= 10_000:
        raise ParamError(f"--points {points}: must be 1..10,000")
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        # The suffix picks the format: any other would be Parquet under a misleading name.
        raise ParamError(f"-o {show_path(out)}: name a .parquet or .csv file (the suffix picks the format)")
    check_outputs(("-o", out), inputs=[a, b])
    pa_, pb = trace_profile(a, points), trace_profile(b, points)
    dist = df_distances(pa_, pb)
    for name, p in (("A", pa_), ("B", pb)):
        console.print(
            f"[bold]{name}[/bold] {p.path}: {p.events:,} events, {p.duration_s:,.3f} s, {p.guest_pages:,} guest pages"
        )
        hist = df_reuse_histogram(p)
        print_table(f"{name}: reuse distance (pages)", hist.filter(hist["accesses"] > 0).to_dicts())
        prof = df_profile(p)
        step = max(1, len(prof) // 5)
        print_table(f"{name}: footprint and guest states over time", prof[step - 1 :: step].to_dicts())
    print_table("distance per measure (0: alike)", dist.to_dicts())
    if out is not None:
        import polars as pl

        table = dist.select(pl.lit(str(a)).alias("trace_a"), pl.lit(str(b)).alias("trace_b"), pl.all())
        if out.suffix.lower() == ".csv":
            from cmmsim.tracer.io import atomic_output

            with atomic_output(out) as tmp:
                table.write_csv(tmp)
        else:
            write_frames((table, out))
        console.print(f"wrote {out}")
