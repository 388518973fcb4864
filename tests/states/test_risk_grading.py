"""LEC and LS evaluation on and around every band edge, with DOMAIN.md's bands and configured
ones; invalid factors and band tables refused with the allowed values named. No database."""

from __future__ import annotations

import itertools

import pytest

from core.errors import InvalidInput
from models.enums import RiskGrade, Tier
from states.risk_grading import (
    DEFAULT_BANDS,
    LEC_VALUES,
    LS_VALUES,
    STYLES,
    bands,
    evaluate,
    grade_of,
    highest,
    tiers_checking,
)

M, S, G, L = RiskGrade.major, RiskGrade.significant, RiskGrade.general, RiskGrade.low


@pytest.mark.parametrize(("score", "grade"), [
    (1000, M), (320.01, M), (320, S), (319.99, S), (160.01, S), (160, G), (159.99, G),
    (70.01, G), (70, L), (69.99, L), (20, L), (0.001, L),
])
def test_lec_default_band_edges(score: float, grade: RiskGrade) -> None:
    # DOMAIN.md: > 320 red, (160, 320] orange, (70, 160] yellow, <= 70 blue
    assert grade_of("lec", score, DEFAULT_BANDS) is grade


@pytest.mark.parametrize(("score", "grade"), [
    (25, M), (20, M), (19.99, S), (16, S), (10, S), (9.99, G), (9, G), (4, G), (3.99, L), (3, L), (1, L),
])
def test_ls_default_band_edges(score: float, grade: RiskGrade) -> None:
    # DOMAIN.md: 20–25 red, 10–16 orange, 4–9 yellow, 1–3 blue
    assert grade_of("ls", score, DEFAULT_BANDS) is grade


def test_every_lec_combination_graded_by_the_rule() -> None:
    seen = set()
    for l_, e, c in itertools.product(LEC_VALUES["L"], LEC_VALUES["E"], LEC_VALUES["C"]):
        ev = evaluate("lec", {"L": l_, "E": e, "C": c})
        d = l_ * e * c
        assert ev.score == pytest.approx(d)
        expected = M if d > 320 else S if d > 160 else G if d > 70 else L
        assert ev.grade is expected, (l_, e, c)
        seen.add(ev.grade)
    assert seen == set(RiskGrade)
    # real products that sit exactly on the edges
    assert evaluate("lec", {"L": 10, "E": 2, "C": 15}).score == 300
    assert evaluate("lec", {"L": 1, "E": 2, "C": 40}).grade is G  # 80
    assert evaluate("lec", {"L": 10, "E": 1, "C": 7}).grade is L  # exactly 70: not above
    assert evaluate("lec", {"L": 0.1, "E": 0.5, "C": 1}).score == 0.05  # no float noise


def test_every_ls_cell_graded_by_the_matrix() -> None:
    expected_rows = {  # S = 1..5 across, L = 1..5 down: the DOMAIN.md matrix written out
        1: "LLLGG", 2: "LGGGS", 3: "LGGSS", 4: "GGSSM", 5: "GSSMM",
    }
    letters = {"M": M, "S": S, "G": G, "L": L}
    for l_, s in itertools.product(LS_VALUES["L"], LS_VALUES["S"]):
        got = evaluate("ls", {"L": l_, "S": s}).grade
        assert got is letters[expected_rows[l_][s - 1]], (l_, s)


def test_configured_bands_move_the_edges() -> None:
    variant = bands({"ls": {"significant": 9, "general": 4}})  # the 9–16 / 4–8 provinces
    assert evaluate("ls", {"L": 3, "S": 3}, variant).grade is S  # 9 is orange there
    assert evaluate("ls", {"L": 2, "S": 4}, variant).grade is G  # 8
    assert evaluate("ls", {"L": 3, "S": 3}).grade is G  # default: 9 is yellow
    strict = bands({"lec": {"major": 240}})
    assert evaluate("lec", {"L": 3, "E": 6, "C": 15}, strict).grade is M  # 270 > 240
    assert evaluate("lec", {"L": 3, "E": 6, "C": 15}).grade is S


def test_settings_bands_reach_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.rules import configured_bands
    from core.settings import get_settings

    monkeypatch.setenv("SAFELOOP_RISK_BANDS", '{"ls": {"significant": 9}}')
    get_settings.cache_clear()
    try:
        assert configured_bands()["ls"] == {"major": 20, "significant": 9, "general": 4}
    finally:
        monkeypatch.delenv("SAFELOOP_RISK_BANDS")
        get_settings.cache_clear()


@pytest.mark.parametrize(("method", "factors", "words"), [
    ("lec", {"L": 7, "E": 6, "C": 15}, ["L", "10、6、3、1、0.5、0.2、0.1", "7"]),
    ("lec", {"L": 3, "E": 4, "C": 15}, ["E", "10、6、3、2、1、0.5"]),
    ("lec", {"L": 3, "E": 6, "C": 50}, ["C", "100、40、15、7、3、1"]),
    ("lec", {"L": 3, "E": 6}, ["缺少 C"]),
    ("lec", {"L": 3, "E": 6, "C": 15, "S": 2}, ["不认识 S"]),
    ("ls", {"L": 6, "S": 2}, ["L", "1、2、3、4、5"]),
    ("ls", {"L": 2.5, "S": 2}, ["1、2、3、4、5"]),
    ("ls", {"L": "三", "S": 2}, ["三"]),
    ("ls", {"L": True, "S": 2}, ["True"]),
    ("abc", {"L": 1}, ["lec", "ls"]),
])
def test_invalid_factors_name_the_allowed_values(method, factors, words) -> None:
    with pytest.raises(InvalidInput) as caught:
        evaluate(method, factors)
    for word in words:
        assert word in caught.value.message


@pytest.mark.parametrize("override", [
    {"xyz": {}}, {"lec": {"huge": 1}}, {"lec": {"major": "high"}},
    {"ls": {"major": 9, "significant": 10}}, {"lec": {"general": 0}}, {"ls": 5},
])
def test_bad_band_tables_refused(override) -> None:
    with pytest.raises(InvalidInput):
        bands(override)


def test_colours_tiers_and_checking_tiers() -> None:
    assert [STYLES[g].colour for g in (M, S, G, L)] == ["红", "橙", "黄", "蓝"]
    assert [STYLES[g].tier for g in (M, S, G, L)] == [Tier.group, Tier.plant, Tier.workshop, Tier.team]
    assert tiers_checking(M) == [Tier.group, Tier.plant, Tier.workshop, Tier.team]
    assert tiers_checking(G) == [Tier.workshop, Tier.team]
    assert tiers_checking("low") == [Tier.team]
    assert highest(["low", None, "significant", "general"]) is S
    assert highest([None]) is None
