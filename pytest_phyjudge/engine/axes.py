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

#: What each axis asks of a clip, in one line for a person who rates it (the HTML report's
#: rating mode shows it under the axis' name). Our own plain-words summary, not the judge's
#: rubric: the judge reads its criteria from the adapter's template, never these.
AXIS_HINTS: dict[str, str] = {
    "SA": "Does the clip show what the caption asks for: its objects, setting and action?",
    "PTV": "Do events happen in a believable order and pace, with no jumps or reversals?",
    "persistence": "Do objects keep their identity, shape, colour and number from start to "
    "end, never popping in, vanishing or morphing?",
    "gravity": "Do unsupported things fall or settle downward, speeding up as they drop?",
    "inertia": "Do things stay still, or keep moving steadily, until something acts on them?",
    "momentum": "When bodies push or strike each other, do their speeds and directions "
    "change in proportion to how heavy they are?",
    "impenetrability": "Do solid objects stay apart, never passing through or merging into "
    "each other?",
    "collision": "When things hit, do they bounce, stop, dent or break believably?",
    "material": "Does each material act like itself: rigid things stay rigid, cloth drapes, "
    "rubber bends, glass shatters?",
    "buoyancy": "Do things float, sink or bob in liquid as their weight and size suggest?",
    "displacement": "Does liquid rise, spill or make room when something enters it?",
    "flow_dynamics": "Does liquid or gas pour, splash and swirl the way real fluids do?",
    "boundary_interaction": "Does fluid meet walls, containers and surfaces believably, "
    "never leaking through a solid?",
    "fluid_continuity": "Does the amount of fluid stay consistent, none appearing from nowhere "
    "or disappearing?",
    "reflection": "Do mirrors, water and shiny surfaces reflect the scene correctly and move "
    "with it?",
    "shadow": "Do shadows fall away from the light, match their objects' shapes and move "
    "with them?",
}

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


def _closest(name: str, choices: tuple[str, ...]) -> str | None:
    if not isinstance(name, str):  # None or a number: no name is close to it
        return None
    close = [c for c in choices if c.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return close[0] if close else None


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    close = _closest(name, choices)
    return f" Did you mean {close!r}?" if close else ""


def _hint(
    name: str, wanted: tuple[str, ...], other: tuple[str, ...], other_kind: str, ask_other: str
) -> str:
    """The did-you-mean of a wrong name: among ``wanted``; or, when it is (or is close to)
    an axis of the other kind, that kind's name and how the caller asks for it."""
    close = _closest(name, wanted + other)
    if close is None:
        return ""
    if close in other:
        return f" {close!r} is {other_kind}: ask for it with {ask_other.format(name=close)}."
    return f" Did you mean {close!r}?"


def check_law(name: str, *, as_metric: str = "metric={name!r}") -> str:
    """Return ``name`` if it is one of the 13 laws, else raise an InputError with a hint;
    ``as_metric`` (``{name}``: the metric) says how the caller asks for a general metric,
    for a metric given where a law goes (``law="SA"``)."""
    if name in LAW_DOMAINS:
        return name
    if name in GENERAL_METRICS:
        raise InputError(
            f"{name!r} is a general metric, not a physical law: ask for it with "
            f"{as_metric.format(name=name)}."
        )
    hint = _hint(name, PHYSICAL_LAWS, GENERAL_METRICS, "a general metric, not a law", as_metric)
    raise InputError(
        f"Unknown physical law {name!r}.{hint} The laws are: {', '.join(PHYSICAL_LAWS)}."
    )


def check_metric(name: str, *, as_law: str = "law={name!r}") -> str:
    """Return ``name`` if it is one of the 3 general metrics, else raise with a hint;
    ``as_law`` says how the caller asks for a law, for a law given where a metric goes."""
    if name in GENERAL_METRICS:
        return name
    if name in LAW_DOMAINS:
        raise InputError(
            f"{name!r} is a physical law, not a general metric: ask for it with "
            f"{as_law.format(name=name)}."
        )
    hint = _hint(name, GENERAL_METRICS, PHYSICAL_LAWS, "a physical law, not a metric", as_law)
    raise InputError(
        f"Unknown general metric {name!r}.{hint} "
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


def axis_from(
    *,
    law: str | None,
    metric: str | None,
    as_metric: str = "metric={name!r}",
    as_law: str = "law={name!r}",
) -> str:
    """The one axis named by exactly one of ``law`` / ``metric`` (``as_metric``/``as_law``:
    how the caller asks for the other kind, see ``check_law``)."""
    if (law is None) == (metric is None):
        which = "both" if law is not None else "neither"
        raise InputError(
            f"Give exactly one of law= or metric= ({which} was given): law= takes one of the "
            f"13 physical laws, metric= one of {', '.join(GENERAL_METRICS)}."
        )
    if law is not None:
        return check_law(law, as_metric=as_metric)
    return check_metric(metric, as_law=as_law)  # type: ignore[arg-type]
