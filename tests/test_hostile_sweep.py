"""Hostile input, third round: sweep files, reports and exchange formats.

A user who checks numbers runs ``cmmsim sweep``, ``report``, ``plot`` and the
trace exchange commands on input nobody tried: each case here is one that once
gave exit status 0 with a silently partial result, or an error that did not
name the thing at fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cmmsim.replay.sweep import load_sweep_file
from cmmsim.tracer.synth import synthesize
from tests.helpers import SMALL
from tests.test_hostile import _no_progress_lines, assert_one_line, run_cli  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep-hostile") / "g.parquet"
    synthesize("phased", path, seed=3, events=3000, params=SMALL["phased"])
    return path


def _sweep_file(tmp_path: Path, trace: Path, set_lines: str = "", top: str = "", strategies: str = "") -> Path:
    toml = tmp_path / "s.toml"
    toml.write_text(
        f'budgets = ["50%"]\n{top}\n[[trace_sets]]\nname = "a"\npaths = ["{trace}"]\n{set_lines}\n'
        + (strategies or '[[strategies]]\nname = "cmm"\n')
    )
    return toml


# -- sweep files ---------------------------------------------------------------------------------------
def test_a_sweep_file_pattern_that_matches_nothing_is_refused(trace, tmp_path):
    """Once dropped silently beside a path that matched: a trace set short of a guest, exit 0."""
    toml = tmp_path / "s.toml"
    toml.write_text(f'budgets = ["50%"]\n[[trace_sets]]\nname = "a"\npaths = ["{trace}", "nomatch-*.parquet"]\n')
    result = run_cli(["sweep", "--sweep", toml, "-o", tmp_path / "out"])
    assert_one_line(result, "nomatch-*.parquet")
    assert not (tmp_path / "out").exists()


#: (where in the file, the line, what the one-line error must name)
DURATION_CASES = {
    "stagger negative": ("set", "copies = 2\nstagger = -5", "stagger"),
    "stagger not a duration": ("set", 'copies = 2\nstagger = "abc"', "stagger"),
    "set interval negative": ("set", "states_interval = -1", "states_interval"),
    "set interval 0": ("set", 'states_interval = "0s"', "states_interval"),
    "sweep interval 0": ("top", "states_interval = 0", "states_interval"),
    "sweep interval abc": ("top", 'states_interval = "abc"', "states_interval"),
}


@pytest.mark.parametrize("case", DURATION_CASES)
def test_a_sweep_file_duration_is_refused_naming_file_and_key(case, trace, tmp_path):
    """A bad duration once said only ``duration -5: must not be negative`` (which of the file's
    durations?); an interval of 0 ran the sweep without its states (or with the sweep's), exit 0,
    where ``--states-interval 0`` is refused."""
    where, line, names = DURATION_CASES[case]
    toml = _sweep_file(tmp_path, trace, **({"set_lines": line} if where == "set" else {"top": line}))
    result = run_cli(["sweep", "--sweep", toml, "-o", tmp_path / "out"])
    err = assert_one_line(result, names)
    assert "s.toml" in err
    assert not (tmp_path / "out").exists()


def test_a_strategy_named_twice_runs_once(trace, tmp_path):
    """Two identical [[strategies]] entries (or a grid value given twice) are one job: once run
    twice and counted as two done, to one part."""
    toml = _sweep_file(
        tmp_path,
        trace,
        strategies='[[strategies]]\nname = "cmm"\nparams = {reclaim_order = ["lru", "lru"]}\n'
        '[[strategies]]\nname = "cmm"\n',
    )
    result = run_cli(["sweep", "--sweep", toml, "-o", tmp_path / "out", "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "1 done" in result.stdout, result.stdout
    assert len(list((tmp_path / "out" / "parts").glob("*.parquet"))) == 1


def test_load_sweep_file_keeps_good_durations(trace, tmp_path):
    toml = _sweep_file(tmp_path, trace, set_lines='copies = 2\nstagger = "1ms"\nstates_interval = "5ms"')
    spec = load_sweep_file(toml)
    assert spec.trace_sets[0].stagger_ns == 1_000_000
    assert spec.trace_sets[0].states_interval_ns == 5_000_000


# -- trace compare ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["d.txt", "d.tsv", "d"])
def test_compare_refuses_an_output_suffix_it_does_not_write(name, trace, tmp_path):
    """``-o d.txt`` once wrote Parquet under a text name (only .csv picked CSV), exit 0."""
    out = tmp_path / name
    result = run_cli(["trace", "compare", trace, trace, "-o", out])
    assert_one_line(result, name)
    assert not out.exists()


# -- vCPUs past any machine -----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["replay", "replay --stream", "sweep", "demo"])
def test_vcpus_past_any_machine_is_refused_before_any_job(command, trace, tmp_path):
    """``--vcpus 99999999999999999999`` once failed every job of a sweep or demo with
    ``OverflowError: Python int too large to convert to C long`` (after a folder was made)."""
    out = tmp_path / "out"
    args = {
        "replay": ["replay", trace, "-s", "cmm", "-b", "10", "-o", out],
        "replay --stream": ["replay", "--stream", trace, "-s", "cmm", "-b", "10", "-o", out],
        "sweep": ["sweep", trace, "-s", "cmm", "-b", "10", "-o", out],
        "demo": ["demo", "-o", out],
    }[command]
    result = run_cli([*args, "--vcpus", "9" * 20])
    assert_one_line(result, "vcpus")
    assert not out.exists()


def test_a_trace_whose_vcpus_is_past_any_machine_is_refused(trace, tmp_path):
    from tests.test_hostile import _retag

    bad = _retag(trace, tmp_path / "cpus.parquet", vcpus=str(1 << 40))
    result = run_cli(["replay", bad, "-s", "cmm", "-b", "10"])
    assert_one_line(result, "vcpus")


# -- cost profiles ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results(trace, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep-hostile-results") / "r.parquet"
    result = run_cli(["replay", trace, "-s", "host-lru", "-b", "10%", "-o", out])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("value", ["1e300", "1.7e308", "9.3e18"])
def test_a_cost_no_priced_figure_can_hold_is_refused(value, results, tmp_path):
    """A finite cost past any time cmmsim represents once priced rows as ``inf`` (stall_ns,
    disk_busy_ns), exit 0, and ranked every strategy tied ``--by stall``."""
    toml = tmp_path / "huge.toml"
    toml.write_text(f"host_write_disk_ns = {value}\n")
    out = tmp_path / "t.csv"
    result = run_cli(["report", results, "-r", "time", "-f", "csv", "--costs", toml, "-o", out])
    assert_one_line(result, "host_write_disk_ns")
    assert not out.exists()


def test_a_cost_up_to_the_longest_time_prices_finitely(results, tmp_path):
    import polars as pl

    toml = tmp_path / "long.toml"
    toml.write_text(f"host_write_disk_ns = {(1 << 63) - 1}\nhost_read_disk_ns = 9.2e18\n")
    out = tmp_path / "t.csv"
    result = run_cli(["report", results, "-r", "time", "-f", "csv", "--costs", toml, "-o", out])
    assert result.exit_code == 0, result.output
    df = pl.read_csv(out)
    assert df["stall_ns"].is_finite().all() and df["disk_busy_ns"].is_finite().all()


# -- resuming into a folder that is not this sweep's ------------------------------------------------------
@pytest.mark.parametrize("manifest", ['{"a": 1}', "{}", '{"jobs": []}'])
def test_a_foreign_sweep_manifest_is_called_damaged_not_an_earlier_cmmsim(manifest, trace, tmp_path):
    """A JSON object with no sweep_id was once blamed on 'an earlier cmmsim (job key format 1)'."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(manifest)
    result = run_cli(["sweep", trace, "-s", "cmm", "-b", "10", "-o", out])
    err = assert_one_line(result, "sweep.json")
    assert "damaged sweep manifest" in err and "earlier cmmsim" not in err
    assert sorted(p.name for p in out.iterdir()) == ["sweep.json"]
    assert (out / "sweep.json").read_text() == manifest


# -- plot ---------------------------------------------------------------------------------------------------
def test_trace_sets_whose_names_slug_alike_get_a_plot_each(trace, tmp_path):
    """Trace sets "a/b" and "a_b" once shared states_a_b.png (and a balloon plot): the second
    silently replaced the first, exit 0."""
    toml = tmp_path / "s.toml"
    sets = "".join(f'[[trace_sets]]\nname = "{n}"\npaths = ["{trace}"]\n' for n in ("a/b", "a_b"))
    strategies = '[[strategies]]\nname = "balloon"\n[[strategies]]\nname = "cmm"\n'
    toml.write_text(f'budgets = ["50%"]\nstates_interval = "50ms"\n{sets}{strategies}')
    result = run_cli(["sweep", "--sweep", toml, "-o", tmp_path / "sw", "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.output
    result = run_cli(["plot", tmp_path / "sw", "-o", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert len([n for n in names if n.startswith("states_")]) == 2, names
    assert len([n for n in names if n.startswith("balloon_")]) == 2, names
    assert "states_a_b.png" in names  # a name that needs no change keeps it


# -- trace import -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "text"), [("txt", ""), ("oracle-general", ""), ("csv", "1,5,0\n2,6,0\n")])
def test_import_of_no_request_is_refused(fmt, text, tmp_path):
    """An empty input (or only size-0 objects) once wrote a trace of 0 events, exit 0, that
    replays to all zeros; ``trace convert`` refuses empty text alike."""
    src = tmp_path / f"in.{fmt}"
    src.write_text(text)
    out = tmp_path / "t.parquet"
    result = run_cli(["trace", "import", src, "-o", out, "--format", fmt])
    assert_one_line(result, src.name)
    assert not out.exists()
