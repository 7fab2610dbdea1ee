"""A run's scores.json from its checks, so the file alone says what passed and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.health import judge_health, replies_of_checks
from pytest_phyjudge.reporting.sheets import case_key
from pytest_phyjudge.reporting.tables import axis_rows
from pytest_phyjudge.scores import VideoResult, build_scores


def identities(checks: Iterable[Check]) -> list[JudgeIdentity]:
    """Every judge behind the checks, in order of first appearance."""
    found: list[JudgeIdentity] = []
    for check in checks:
        judge = check.judgment.judge if check.judgment is not None else check.judge
        if judge is not None and judge not in found:
            found.append(judge)
    return found


def _row_name(check: Check, taken: set[tuple[str | None, str]]) -> str:
    """The row's ``video``: the case id, else the clip's stem; a stem already used in the
    same suite (one clip asserted with two captions, or two folders' ``clip.mp4``) gets
    ``#2``, ``#3``... so that every row can be told apart, as PhyGround's rows can."""
    base = check.case or (Path(check.video).stem if check.video else "?")
    name, repeat = base, 1
    while (check.suite, name) in taken:
        repeat += 1
        name = f"{base}#{repeat}"
    taken.add((check.suite, name))
    return name


def _add(result: VideoResult, check: Check) -> None:
    laws = list(result.physical_laws)
    laws += [law for law in check.laws if law not in laws]
    result.physical_laws = laws
    judged: Judgment | Exception = check.judgment or Exception(check.error or "no score")
    result.outcomes[check.axis] = judged
    if check.samples is not None:
        result.values[check.axis] = check.value
        result.extra.setdefault("samples", {})[check.axis] = [s.get("score") for s in check.samples]


def _group(checks: Sequence[Check]) -> list[tuple[VideoResult, list[Check]]]:
    """The checks by row of ``scores.json`` (one per case, or per clip and caption)."""
    groups: dict[tuple[Any, ...], tuple[VideoResult, list[Check]]] = {}
    taken: set[tuple[str | None, str]] = set()
    for check in checks:
        # A suite case is one row whatever its clip; a test function's checks are one row
        # per clip and caption it asserted: the same clip judged by a suite and by a test,
        # or by two tests, is two rows, each labelled with its source.
        key: tuple[Any, ...] = case_key(check)
        while key in groups and check.axis in groups[key][0].outcomes:
            key = (*key, "again")  # one test asserting an axis twice: a row per assertion
        if key not in groups:
            name = _row_name(check, taken)
            groups[key] = (VideoResult(video=name, prompt=check.caption, physical_laws=[]), [])
        result, members = groups[key]
        members.append(check)
        _add(result, check)
    return list(groups.values())


def _relative(path: str | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def _check_entry(check: Check, base: Path) -> dict[str, Any]:
    judgment = check.judgment
    return {
        "score": check.value,
        "min_score": check.min_score,
        "passed": check.passed,
        **({"would_fail": True} if check.would_fail else {}),
        "outcome": check.outcome,
        "nodeid": check.nodeid,
        "raw": None if judgment is None else judgment.raw,
        "error": check.error,
        "sheet": _relative(check.sheet, base),
        "probs": None if judgment is None or judgment.probs is None else list(judgment.probs),
        "expected": check.expected,
        "prompt": check.prompt,
        **({} if check.samples is None else {"samples": check.samples, "summary": check.summary}),
        **({} if check.baseline is None else {"baseline": check.baseline}),
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-phyjudge")
    except PackageNotFoundError:
        return "unknown"


def build_report(
    checks: Sequence[Check],
    *,
    report_path: Path | None,
    plugin_settings: Mapping[str, Any],
    state_judge: JudgeIdentity | None,
    run: Mapping[str, Any],
    canary: Mapping[str, Any] | None = None,
    judge_server: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PhyGround's scores.json, plus per axis the threshold and verdict, the judge and the
    run's settings. Sheet paths are relative to ``report_path``'s folder (where the file
    goes); ``plugin_settings`` is recorded as given (the plugin's options as plain values).
    ``canary`` (the canary check) and ``judge_server`` (what a judge server said of itself)
    go into ``meta`` when there are any."""
    base = report_path.parent if report_path is not None else Path.cwd()
    results = []
    for result, members in _group(checks):
        result.extra["suite"] = members[0].suite
        result.extra["source"] = members[0].source
        generator = next((c.generator for c in members if c.generator), None)
        if generator is not None:
            result.extra["generator"] = generator
        result.extra["video_path"] = next((c.video for c in members if c.video), None)
        result.extra["sheet"] = _relative(next((c.sheet for c in members if c.sheet), None), base)
        result.extra["checks"] = {c.axis: _check_entry(c, base) for c in members}
        result.extra["passed"] = all(c.passed for c in members)
        results.append(result)
    found = identities(checks) or ([state_judge] if state_judge else [])
    settings = next((c.settings for c in checks if c.settings), {})
    meta = {
        "tool": "pytest-phyjudge",
        "version": _version(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "judge": found[0].to_dict() if found else None,
        "judges": [j.to_dict() for j in found],
        "scores_meaningless": any(j.kind in ("tiny", "scripted") for j in found),
        "settings": {"judge": settings, "plugin": dict(plugin_settings)},
        "run": dict(run),
        "judge_warnings": [w.to_dict() for w in judge_health(replies_of_checks(checks))],
    }
    if canary is not None:
        meta["canary"] = dict(canary)
    if judge_server is not None:
        meta["judge_server"] = dict(judge_server)
    document = build_scores(results, meta)
    document["num_checks"] = len(checks)
    document["passed"] = all(c.passed for c in checks)
    document["axes"] = {row.axis: row.to_dict() for row in axis_rows(checks)}
    return document
