"""The 16 axes: names, domains, and lookups that suggest the name that was meant."""

from __future__ import annotations

import pytest

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.axes import (
    ALL_AXES,
    GENERAL_METRICS,
    LAW_DOMAINS,
    PHYSICAL_LAWS,
    axis_from,
    check_axis,
    check_law,
    check_metric,
    domain_of,
    is_law,
)


def test_the_sixteen_axes() -> None:
    assert GENERAL_METRICS == ("SA", "PTV", "persistence")
    assert len(PHYSICAL_LAWS) == 13 and len(set(PHYSICAL_LAWS)) == 13
    assert ALL_AXES == GENERAL_METRICS + PHYSICAL_LAWS
    assert all(is_law(law) for law in PHYSICAL_LAWS)
    assert not any(is_law(metric) for metric in GENERAL_METRICS)


@pytest.mark.parametrize(
    ("axis", "domain"),
    [
        ("SA", "general"),
        ("PTV", "general"),
        ("persistence", "general"),
        ("gravity", "solid"),
        ("inertia", "solid"),
        ("momentum", "solid"),
        ("impenetrability", "solid"),
        ("collision", "solid"),
        ("material", "solid"),
        ("buoyancy", "fluid"),
        ("displacement", "fluid"),
        ("flow_dynamics", "fluid"),
        ("boundary_interaction", "fluid"),
        ("fluid_continuity", "fluid"),
        ("reflection", "optics"),
        ("shadow", "optics"),
    ],
)
def test_domain_of(axis: str, domain: str) -> None:
    assert domain_of(axis) == domain


def test_domain_of_covers_every_law_and_rejects_unknown_names() -> None:
    assert {domain_of(law) for law in PHYSICAL_LAWS} == {"solid", "fluid", "optics"}
    assert set(LAW_DOMAINS) == set(PHYSICAL_LAWS)
    with pytest.raises(InputError, match="Did you mean 'shadow'"):
        domain_of("shadows")


def test_valid_names_are_returned_unchanged() -> None:
    for law in PHYSICAL_LAWS:
        assert check_law(law) == law
        assert check_axis(law) == law
    for metric in GENERAL_METRICS:
        assert check_metric(metric) == metric
        assert check_axis(metric) == metric


@pytest.mark.parametrize(
    ("check", "name", "suggestion"),
    [
        (check_law, "gravty", "gravity"),
        (check_law, "Gravity", "gravity"),
        (check_law, "colision", "collision"),
        (check_law, "flow-dynamics", "flow_dynamics"),
        (check_law, "reflections", "reflection"),
        (check_metric, "sa", "SA"),
        (check_metric, "ptv", "PTV"),
        (check_metric, "persistance", "persistence"),
        (check_axis, "Shadow", "shadow"),
        (check_axis, "momentun", "momentum"),
        (check_axis, "Sa", "SA"),
    ],
)
def test_unknown_names_suggest_the_closest(check, name: str, suggestion: str) -> None:
    with pytest.raises(InputError) as caught:
        check(name)
    message = str(caught.value)
    assert repr(name) in message
    assert f"Did you mean {suggestion!r}?" in message


@pytest.mark.parametrize("check", [check_law, check_metric, check_axis])
def test_hopeless_names_get_no_suggestion_but_the_list(check) -> None:
    with pytest.raises(InputError) as caught:
        check("xyzzy")
    message = str(caught.value)
    assert "Did you mean" not in message
    assert "'xyzzy'" in message
    if check is not check_metric:
        assert "boundary_interaction" in message
    assert "persistence" in message or check is check_law


def test_check_law_lists_the_laws() -> None:
    with pytest.raises(InputError) as caught:
        check_law("friction")
    assert all(law in str(caught.value) for law in PHYSICAL_LAWS)


def test_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_axis("nope")


def test_axis_from_exactly_one() -> None:
    assert axis_from(law="gravity", metric=None) == "gravity"
    assert axis_from(law=None, metric="PTV") == "PTV"
    with pytest.raises(InputError, match=r"exactly one of law= or metric= \(both was given\)"):
        axis_from(law="gravity", metric="SA")
    with pytest.raises(InputError, match=r"\(neither was given\)"):
        axis_from(law=None, metric=None)
    with pytest.raises(InputError, match="Did you mean 'gravity'"):
        axis_from(law="gravty", metric=None)
    with pytest.raises(InputError, match="'gravity' is a physical law, not a general metric"):
        axis_from(law=None, metric="gravity")
