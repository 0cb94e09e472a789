"""Budget specs to frames: the rounding docs/model.md (section 2) states."""

from __future__ import annotations

import pytest

from cmmsim.replay.budgets import parse_budget, parse_budgets
from cmmsim.tracer.errors import ParamError


@pytest.mark.parametrize(
    ("spec", "pages"),
    [
        ("4096", 4096),
        (7, 7),
        ("8KiB", 2),
        ("6KiB", 1),  # bytes round down to whole pages
        ("1.5MiB", 384),
        ("50%", 50),
        ("2.5%", 2),  # a half goes to the even page
        ("3.5%", 4),
        ("2.6%", 3),  # else to the nearest
    ],
)
def test_a_spec_gives_the_frames_the_model_states(spec, pages):
    assert parse_budget(spec, 100) == pages


@pytest.mark.parametrize("spec", ["2KiB", "0.4%", "0", "1.5", "12 parsecs", "-5"])
def test_a_spec_below_a_page_or_malformed_is_refused(spec):
    with pytest.raises(ParamError, match="budget"):
        parse_budget(spec, 100)


def test_budgets_are_sorted_and_each_once():
    assert parse_budgets(["50%", "50", "4KiB", 10], 100).tolist() == [1, 10, 50]
