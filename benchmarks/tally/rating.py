"""The HTML report's rating mode and ``phyjudge agree`` on its export (round 5): hostile
strings in every field the page shows or embeds in its rating block, forged rating exports,
and agree's outputs (terminal, Markdown, JSON, ``--plot`` onto what is not a chart).

Clean for the page: a report (or a refusal) with no live HTML, no raw control character
(C0 but tab and newline, C1, bidi controls, U+2028/9), and a rating block that parses as
JSON, holds no ``<`` and gives back each row's keys exactly (the export pairs by them).
Clean for a forged export: a refusal (exit 2) naming the file, or a safe result. Clean for
agree's outputs: no raw control, no live Markdown, JSON that parses, and every user's file
where ``--plot`` points (or a symlink there points) left as it was.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import Probe, expect
from tally.probes import cli

PAGE = "rating: hostile fields in the page"
EXPORT = "rating: forged exports into agree"
OUTPUTS = "rating: agree's outputs and --plot"
ANY = expect("returned", "error")
QUICK = 20.0

#: Every control a page must show as an escape rather than carry.
_PAGE_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
PAYLOADS: dict[str, str] = {
    "script_end": "</script><script>alert('xss')</script>",
    "comment_open": "<!-- <script>alert('xss')</script>",
    "attribute_quotes": "\"'><img src=x onerror=alert('xss')>",
    "template": "{{ 7*7 }}{% raw %}${alert('xss')}",
    "bidi": "case\u202egpj.exe\u2066",
    "terminal": "\x1b[31mred\x1b]0;title\x07\r\x00",
    "line_separators": "a\u2028b\u2029c",
    "lone_surrogate": "a\ud800b",
}
ALL = " ".join(PAYLOADS.values())


def _document(text: str, where: str) -> dict[str, Any]:
    """A judge's report of two cases (no clips: quick), ``text`` put in field ``where``."""
    check: dict[str, Any] = {"score": 3, "min_score": 3, "passed": True, "outcome": "xpassed"}
    row: dict[str, Any] = {
        "video": "fall",
        "suite": "s",
        "prompt": "A ball falls.",
        "SA": 3,
        "physical": {"laws": {"gravity": {"score": 2}}},
        "checks": {"SA": check, "gravity": {"score": 2, "outcome": "xfailed"}},
    }
    meta: dict[str, Any] = {"judge": {"kind": "local", "adapter": "PhyJudge-9B"}}
    doc = {"meta": meta, "results": [row, {"video": "lamp", "prompt": "A lamp.", "SA": 4}]}
    if where in ("video", "suite", "source", "prompt", "generator"):
        row[where] = ("fall" if where == "video" else "") + text
    elif where in ("raw", "error", "nodeid"):
        check[where] = text
    elif where == "rendered_prompt":
        check["prompt"] = {"system": text, "user": text}
    elif where == "baseline_status":
        check["baseline"] = {"status": text, "stored": 3, "obtained": 2}
    elif where == "sample_error":
        check["samples"] = [{"sample": 0, "seed": 1, "score": 3, "expected": 3.0, "error": text}]
    elif where == "law_status":
        row["physical"]["laws"]["gravity"]["status"] = text
    elif where in ("adapter", "base", "revision", "kind"):
        meta["judge"][where] = text
    elif where in ("created", "generator_meta"):
        meta[where.removesuffix("_meta")] = text
    elif where == "judge_warning":
        meta["judge_warnings"] = [{"axis": "SA", "kind": "constant", "message": text}]
    elif where == "canary":
        meta["canary"] = {"file": text, "status": "failed", "line": text, "verdict": text}
    elif where == "judge_server":
        meta["judge_server"] = {"model": text, "system_fingerprint": text, "answered_by": text}
    return doc


#: meta fields of another type than the writer's: (block, field, value).
WRONG_TYPES = {
    "canary_seconds_string": ("canary", "judge_seconds", "12 s"),
    "canary_seconds_list": ("canary", "judge_seconds", [1.5]),
    "canary_seconds_nan": ("canary", "judge_seconds", float("nan")),
    "canary_calls_float": ("canary", "judge_calls", 2.5),
    "canary_status_object": ("canary", "status", {"failed": True}),
    "server_answered_by_object": ("judge_server", "answered_by", {"model": "m"}),
    "server_model_list": ("judge_server", "model", ["m"]),
}


def _wrong_type(block: str, field: str, value: Any) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        doc = _document("plain", "prompt")
        base = {"canary": {"file": "c.json", "status": "passed", "line": "ok"}}
        doc["meta"][block] = {**base.get(block, {"model": "m"}), field: value}
        scores = folder / "scores.json"
        scores.write_text(json.dumps(doc), encoding="utf-8")
        return cli("report", str(scores), "--html", str(folder / "site"))(folder)

    return run


def _page_check(folder: Path, text: str) -> str | None:
    site = folder / "site"
    index = site / "index.html"
    if not index.is_file():
        return None  # refused: the message was judged already
    if problem := kit.live_html(site):
        return problem
    page = index.read_text(encoding="utf-8", errors="replace")
    if found := _PAGE_CONTROLS.search(page):
        return f"a raw control character {found.group(0)!r} reached the page"
    block = re.search(
        r'<script type="application/json" id="rating-data">(.*?)</script>', page, re.S
    )
    if block is None:
        return "the rating block is missing or was cut short by a field"
    if "<" in block.group(1):
        return "a '<' stands raw in the rating block"
    data = json.loads(block.group(1))
    written = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
    keys = [(r["video"], r.get("suite"), r.get("prompt")) for r in written["results"]]
    held = [(c["video"], c["suite"], c["prompt"]) for c in data["cases"]]
    if held != keys:
        return "the rating block does not give back the rows' keys exactly"
    return None


def _report(text: str, where: str, *extra: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        scores = folder / "scores.json"
        # json.dumps escapes a lone surrogate as \\ud800: a file any JSON writer could make.
        scores.write_text(json.dumps(_document(text, where)), encoding="utf-8")
        return cli("report", str(scores), "--html", str(folder / "site"), *extra)(folder)

    return run


FIELDS = (
    "video",
    "suite",
    "source",
    "prompt",
    "generator",
    "raw",
    "error",
    "nodeid",
    "rendered_prompt",
    "baseline_status",
    "sample_error",
    "law_status",
    "adapter",
    "base",
    "revision",
    "kind",
    "created",
    "generator_meta",
    "judge_warning",
    "canary",
    "judge_server",
)


def _pytest_page(folder: Path) -> str:
    """``pytest --phyjudge-html``: a suite's name and a caption carry every payload but the
    lone surrogate (which no YAML file can hold)."""
    text = " ".join(v for k, v in PAYLOADS.items() if k != "lone_surrogate")
    path = kit.suite(folder, cases=("a",), suite_name="s" + text)
    yaml = path.read_text(encoding="utf-8")
    caption = "prompt: " + json.dumps("A ball falls." + text)
    path.write_text(yaml.replace("prompt: A ball falls.", caption), encoding="utf-8")
    code, out = kit.run_pytest(
        folder,
        path.name,
        "--phyjudge-judge",
        "judges:make",
        "--phyjudge-report",
        "scores.json",
        "--phyjudge-html",
        "site",
        limit=40.0,
    )
    return f"exit {code}\n{out}"


def page_probes() -> Iterator[Probe]:
    for where in FIELDS:
        yield Probe(
            PAGE, f"page_all_payloads_in_{where}", _report(ALL, where), ANY, _page_check, QUICK
        )
    for name, payload in PAYLOADS.items():
        for where in ("video", "prompt"):
            run = _report(payload, where)
            yield Probe(PAGE, f"page_{name}_in_{where}", run, ANY, _page_check, QUICK)
    run = _report("plain", "prompt", "--title", ALL)
    yield Probe(PAGE, "page_all_payloads_in_title", run, ANY, _page_check, QUICK)
    yield Probe(PAGE, "page_pytest_suite_and_caption", _pytest_page, ANY, _page_check, 60.0)
    for name, (block, field, value) in WRONG_TYPES.items():
        want = expect("returned", names=f"meta.{block}.{field}")
        yield Probe(PAGE, f"page_{name}", _wrong_type(block, field, value), want, _refused, QUICK)


# --------------------------------------------------------------------------- exports


def _export(rater: str = "ada", scores: tuple[Any, ...] = (2, 3, 4, 5, 1, 3)) -> dict[str, Any]:
    """An export as the rating mode writes it."""
    return {
        "meta": {"judge": {"kind": "human", "adapter": f"human:{rater}"}, "rater": rater},
        "results": [
            {"video": f"v{i}", "SA": s, "physical": {"laws": {"gravity": {"score": s}}}}
            for i, s in enumerate(scores)
        ],
        "format": "pytest-phyjudge-scores",
        "version": 1,
    }


def _judge_file(folder: Path) -> Path:
    judged = _export(scores=(3, 3, 4, 4, 2, 3))
    judged["meta"] = {"judge": {"kind": "local", "adapter": "PhyJudge-9B"}}
    path = folder / "judge.json"
    path.write_text(json.dumps(judged), encoding="utf-8")
    return path


def _setting(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _twice(doc: dict[str, Any]) -> None:
    doc["results"].append(copy.deepcopy(doc["results"][0]))


def _law(name: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["results"][0]["physical"]["laws"][name] = {"score": 3}

    return change


def _judge_report_as_export(doc: dict[str, Any]) -> None:
    """A judge's report relabelled as a person's: replies and probabilities in it."""
    for row in doc["results"]:
        row["checks"] = {"SA": {"score": row["SA"], "raw": '{"SA": 3}', "probs": [0, 0, 1, 0, 0]}}


SA0 = ("results", 0, "SA")
#: name -> (a change to a good export, or the file's text made from one; must it be refused?)
FORGED: dict[str, tuple[Callable[[dict[str, Any]], Any] | Callable[[str], str], bool]] = {
    "score_zero": (_setting(SA0, 0), True),
    "score_six": (_setting(SA0, 6), True),
    "score_negative": (_setting(SA0, -1), True),
    "score_huge": (_setting(SA0, 10**400), True),
    "score_string": (_setting(SA0, "4"), True),
    "score_bool": (_setting(SA0, True), True),
    "score_list": (_setting(SA0, [4]), True),
    "score_object": (_setting(SA0, {"score": 4}), True),
    "score_float": (_setting(SA0, 2.5), False),
    "score_null": (_setting(SA0, None), False),
    "law_score_nine": (_setting(("results", 0, "physical", "laws", "gravity", "score"), 9), True),
    "clip_twice": (_twice, True),
    "axis_constructor": (_law("constructor"), True),
    "axis_proto": (_law("__proto__"), True),
    "metric_as_law": (_law("SA"), True),
    "newer_version": (_setting(("version",), 99), True),
    "other_format": (_setting(("format",), "ratings-v2"), True),
    "rater_object": (_setting(("meta", "judge", "adapter"), {"name": "ada"}), True),
    "kind_list": (_setting(("meta", "judge", "kind"), ["human"]), True),
    "results_object": (_setting(("results",), {"v0": {"SA": 3}}), True),
    "empty_results": (_setting(("results",), []), True),
    "video_int": (_setting(("results", 0, "video"), 7), True),
    "judge_report_as_export": (_judge_report_as_export, True),
    "rater_hostile": (_setting(("meta", "judge", "adapter"), "human:" + ALL), False),
}
#: name -> the file's text as bytes (what no JSON writer makes).
RAW: dict[str, Callable[[str], bytes]] = {
    "nan": lambda good: good.replace('"SA": 2', '"SA": NaN', 1).encode(),
    "infinity": lambda good: good.replace('"SA": 2', '"SA": Infinity', 1).encode(),
    "key_twice": lambda good: good.replace('"SA": 2', '"SA": 2, "SA": 5', 1).encode(),
    "bom": lambda good: b"\xef\xbb\xbf" + good.encode(),
    "latin1": lambda good: good.replace("ada", "\xe9").encode("latin-1"),
    "truncated": lambda good: good[: len(good) // 2].encode(),
    "deep": lambda good: b"[" * 100_000 + b"]" * 100_000,
    "top_level_list": lambda good: b"[]",
    "html_page": lambda good: b"<!doctype html><script>alert(1)</script>",
}


def _agree(folder: Path, ratings: Path, *extra: str) -> str:
    return cli("agree", str(_judge_file(folder)), str(ratings), *extra)(folder)


def _forged(name: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        ratings = folder / "ratings.json"
        good = json.dumps(_export())
        if name in RAW:
            ratings.write_bytes(RAW[name](good))
        else:
            doc = _export()
            change, _refuse = FORGED[name]
            doc = change(doc) or doc  # type: ignore[arg-type]
            ratings.write_text(json.dumps(doc), encoding="utf-8")
        return _agree(folder, ratings)

    return run


def _special(kind: str) -> Callable[[Path], str]:
    """A ratings file that is no file: a FIFO (must not hang), a folder, a huge sparse file."""

    def run(folder: Path) -> str:
        ratings = folder / "ratings.json"
        if kind == "fifo":
            os.mkfifo(ratings)
        elif kind == "folder":
            ratings.mkdir()
        else:
            with open(ratings, "wb") as file:
                file.truncate(80 * 2**20)
        return _agree(folder, ratings)

    return run


def _refused(folder: Path, text: str) -> str | None:
    if text.startswith("exit 0"):
        return "a forged export was believed: agree printed a result"
    return kit.raw_controls(text)


def _safe(folder: Path, text: str) -> str | None:
    return kit.raw_controls(text)


def export_probes() -> Iterator[Probe]:
    for name, (_change, refuse) in FORGED.items():
        want = expect("returned", names="ratings.json") if refuse else ANY
        check = _refused if refuse else _safe
        yield Probe(EXPORT, f"export_{name}", _forged(name), want, check, QUICK)
    for name in RAW:
        want = expect("returned", names="ratings.json")
        yield Probe(EXPORT, f"export_{name}", _forged(name), want, _refused, QUICK)
    for kind in ("fifo", "folder", "huge_sparse"):
        want = expect("returned", names="ratings.json")
        yield Probe(EXPORT, f"export_{kind}", _special(kind), want, _refused, QUICK)


# --------------------------------------------------------------------------- outputs

RATER = (
    "\x1b]0;owned\x07\u202e@everyone INJECTED [x](javascript:alert(1)) <img src=x> | "
    "$\\frac{$ `c`\n# INJECTED"
)


def _hostile_rater(fmt: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        ratings = folder / "ratings.json"
        ratings.write_text(json.dumps(_export(RATER)), encoding="utf-8")
        return _agree(folder, ratings, "--format", fmt)

    return run


def _format_check(fmt: str) -> Callable[[Path, str], str | None]:
    def check(folder: Path, text: str) -> str | None:
        body = text.split("\n", 1)[1] if "\n" in text else ""
        if fmt == "json":
            try:
                shown = json.loads(body)["b"]["label"]
            except (ValueError, KeyError):
                return "agree --format json printed no JSON"
            return None if shown == f"human:{RATER}" else "the JSON changed the rater's name"
        if fmt == "markdown":
            return kit.live_markdown(body)
        return kit.raw_controls(body) or (
            "a bidi override reached the terminal" if "\u202e" in body else None
        )

    return check


def _plot_onto(kind: str) -> tuple[Callable[[Path], str], Callable[[Path, str], str | None]]:
    """``agree --plot`` onto a symlink to a secret, a user's file, a FIFO, a folder, an
    earlier chart, a path through a missing folder, or with a mathtext rater name."""
    state: dict[str, Any] = {}

    def run(folder: Path) -> str:
        ratings = folder / "ratings.json"
        rater = "$\\frac{$ ^_^ \ud800\u202e" if kind == "mathtext" else "ada"
        ratings.write_text(json.dumps(_export(rater)))
        (secret,) = kit.user_files(folder, "keep/secret.txt")
        target = folder / "chart.png"
        if kind == "symlink_to_user_file":
            target.symlink_to(secret)
        elif kind == "user_file":
            target = secret
        elif kind == "user_png_symlink":
            (png,) = kit.user_files(folder, "keep/photo.png")
            target.symlink_to(png)
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "folder":
            target.mkdir()
        elif kind == "new_folder":
            target = folder / "new" / "deeper" / "chart.png"
        state["before"] = kit.snapshot(*sorted((folder / "keep").iterdir()))
        state["target"] = target
        return _agree(folder, ratings, "--plot", str(target))

    def check(folder: Path, text: str) -> str | None:
        if problem := kit.changed(state["before"]):
            return problem
        if text.startswith("exit 0"):
            if state["target"].is_symlink() or not state["target"].is_file():
                return "agree said it drew a chart that is not a file of its own"
            if not state["target"].read_bytes().startswith(b"\x89PNG"):
                return "the chart is no PNG"
        return None

    return run, check


PLOTS = (
    "symlink_to_user_file",
    "user_file",
    "user_png_symlink",
    "fifo",
    "folder",
    "new_folder",
    "mathtext",
)


def output_probes() -> Iterator[Probe]:
    for fmt in ("text", "markdown", "json"):
        yield Probe(
            OUTPUTS, f"agree_rater_{fmt}", _hostile_rater(fmt), ANY, _format_check(fmt), QUICK
        )
    for kind in PLOTS:
        run, check = _plot_onto(kind)
        yield Probe(OUTPUTS, f"agree_plot_{kind}", run, ANY, check, 40.0)


def rating_probes() -> list[Probe]:
    return [*page_probes(), *export_probes(), *output_probes()]
