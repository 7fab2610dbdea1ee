"""The 16 axes PhyJudge scores, their domains, and name lookup with suggestions."""

from __future__ import annotations

import difflib
from typing import Literal

from pytest_phyjudge._exceptions import InputError

Domain = Literal["general", "solid", "fluid", "optics"]

#: General axes, in the order the reference template lists them.
GENERAL_METRICS: tuple[str, ...] = ("SA", "PTV", "persistence")

#: The 13 physical laws, grouped by domain in the order PhyGround lists them.
LAW_DOMAINS: dict[str, Domain] = {
    "gravity": "solid",
    "inertia": "solid",
    "momentum": "solid",
    "impenetrability": "solid",
    "collision": "solid",
    "material": "solid",
    "buoyancy": "fluid",
    "displacement": "fluid",
    "flow_dynamics": "fluid",
    "boundary_interaction": "fluid",
    "fluid_continuity": "fluid",
    "reflection": "optics",
    "shadow": "optics",
}

PHYSICAL_LAWS: tuple[str, ...] = tuple(LAW_DOMAINS)

#: Each physical domain and its laws, in PhyGround's order (the leaderboard's columns).
DOMAINS: dict[Domain, tuple[str, ...]] = {
    domain: tuple(law for law, of in LAW_DOMAINS.items() if of == domain)
    for domain in ("solid", "fluid", "optics")
}
ALL_AXES: tuple[str, ...] = GENERAL_METRICS + PHYSICAL_LAWS

#: The judge's scale: every score is a whole number from MIN_SCORE to MAX_SCORE.
MIN_SCORE, MAX_SCORE = 1, 5


def is_score(value: object) -> bool:
    """A score of the judge's scale: an int (not a bool) from 1 to 5."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and MIN_SCORE <= value <= MAX_SCORE
    )


#: What each domain is called in reports.
DOMAIN_TITLES: dict[Domain, str] = {
    "general": "general",
    "solid": "solid-body mechanics",
    "fluid": "fluid dynamics",
    "optics": "optics",
}


def is_law(axis: str) -> bool:
    return axis in LAW_DOMAINS


def domain_of(axis: str) -> Domain:
    """The domain of an axis: ``general`` for the three general metrics."""
    if axis in GENERAL_METRICS:
        return "general"
    return LAW_DOMAINS[check_axis(axis)]


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    close = [c for c in choices if c.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_law(name: str) -> str:
    """Return ``name`` if it is one of the 13 laws, else raise an InputError with a hint."""
    if name in LAW_DOMAINS:
        return name
    raise InputError(
        f"Unknown physical law {name!r}.{_suggest(name, PHYSICAL_LAWS + GENERAL_METRICS)} "
        f"The laws are: {', '.join(PHYSICAL_LAWS)}."
    )


def check_metric(name: str) -> str:
    """Return ``name`` if it is one of the 3 general metrics, else raise with a hint."""
    if name in GENERAL_METRICS:
        return name
    raise InputError(
        f"Unknown general metric {name!r}.{_suggest(name, GENERAL_METRICS + PHYSICAL_LAWS)} "
        f"The general metrics are: {', '.join(GENERAL_METRICS)}."
    )


def check_axis(name: str) -> str:
    """Return ``name`` if it is any of the 16 axes, else raise with a hint."""
    if name in ALL_AXES:
        return name
    raise InputError(
        f"Unknown axis {name!r}.{_suggest(name, ALL_AXES)} "
        f"The axes are the general metrics {', '.join(GENERAL_METRICS)} "
        f"and the laws {', '.join(PHYSICAL_LAWS)}."
    )


def axis_from(*, law: str | None, metric: str | None) -> str:
    """The one axis named by exactly one of ``law`` / ``metric``."""
    if (law is None) == (metric is None):
        which = "both" if law is not None else "neither"
        raise InputError(
            f"Give exactly one of law= or metric= ({which} was given): law= takes one of the "
            f"13 physical laws, metric= one of {', '.join(GENERAL_METRICS)}."
        )
    return check_law(law) if law is not None else check_metric(metric)  # type: ignore[arg-type]
