"""Canaries and judge servers' self-description: hostile canary files (clip paths out of the
folder, aliases, special files, a secret named as a clip with its true sha256, NaN, deep
nesting, thousands of items, claims of the wrong type or megabytes long, terminal codes),
``canary record --out`` onto a user's file, link, pipe or device, forged ``meta.canary`` and
``meta.judge_server`` in a ``scores.json`` read back by ``phyjudge report``, and judge
servers that describe themselves with terminal codes, megabyte fingerprints, a fingerprint
that changes between replies or NaN log-probabilities during a canary check.

Clean: no traceback or hang; a canary file that must not be believed is refused (exit 2,
naming the field or the clip); nothing of a secret is read or printed; a user's file, link
or pipe is left as it was; a forged check is never shown as one that passed; no raw terminal
control, live Markdown or live HTML reaches an output; a server's fingerprint reaches no
report whole; a check against a server that changed or sent NaN never passes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import Check, NotClean, Probe, expect
from tally.probes import cli

FILES = "canaries: hostile canary files"
OUT = "canaries: record --out onto a user's file"
REPORTS = "canaries: forged checks and servers in reports"
SERVERS = "canaries: judge servers during a check"
ANY = expect("returned", "error")
EVIL = "\x1b[2J\x1b[31mEVIL\r@octo-org/admins ![p](https://evil.example/p.png) <b>x</b> | a |"

JUDGES = """
from pytest_phyjudge import ScriptedJudge

def same():
    return ScriptedJudge({"gravity": 2, "*": 4}, name="judge-a")

def other():
    return ScriptedJudge({"gravity": 5, "*": 1}, name="judge-a")
"""


def _judges(folder: Path) -> None:
    (folder / "tally_canary_judges.py").write_text(JUDGES, encoding="utf-8")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def _canaries(folder: Path, real: bool = False) -> dict[str, Any]:
    """A canary file's content for two clips under ``folder/clips`` (stand-ins a scripted
    judge never decodes; ``real`` ones for a judge server's client, which does), recorded
    by the scripted judge ``same``."""
    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.canary.model import CanaryFile, CanaryItem
    from pytest_phyjudge.canary.record import Ask, observe_judge
    from pytest_phyjudge.judges.settings import JudgeSettings
    from pytest_phyjudge.testing import write_test_video

    clips = []
    for seed, name in enumerate(("c1", "c2")):
        path = folder / "clips" / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        if real:
            write_test_video(path, frames=4, seed=seed)
        else:
            path.write_bytes(f"a canary clip, never decoded: {name}".encode())
        clips.append(path)
    judge = ScriptedJudge({"gravity": 2, "*": 4}, name="judge-a")
    asks = [Ask(c, f"A ball {c.stem}.", axis) for c in clips for axis in ("SA", "gravity")]
    seen = observe_judge(judge, JudgeSettings(), asks, clock=lambda: 0.0)
    items = tuple(
        CanaryItem(
            clip=f"clips/{ask.clip.name}",
            clip_sha256=kit.sha256(ask.clip.read_bytes()),
            caption=ask.caption,
            axis=ask.axis,
            prompt_sha256=answer.prompt_sha256,
            reading=answer.reading,
        )
        for ask, answer in zip(asks, seen.answers, strict=True)
    )
    return CanaryFile(seen.setup, items).to_dict()


Edit = Callable[[dict[str, Any], Path], Any]


def _checked(
    edit: Edit | None = None, raw: Callable[[Path], bytes] | None = None, judge: str = "same"
) -> Callable[[Path], str]:
    """``phyjudge canary check`` of a canary file made with ``edit(data, folder)`` (or the
    bytes ``raw(folder)``) by the scripted judge ``judge``."""

    def run(folder: Path) -> str:
        _judges(folder)
        data = _canaries(folder)
        if edit is not None:
            data = edit(data, folder) or data
        path = folder / "canaries.json"
        if raw is not None:
            path.write_bytes(raw(folder))
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
        return cli("canary", "check", str(path), "--judge", f"tally_canary_judges:{judge}")(folder)

    return run


def _refused(*names: str, secret: str | None = None) -> Check:
    """Clean: exit 2 naming each of ``names``; nothing of ``secret`` printed."""

    def check(folder: Path, text: str) -> str | None:
        if secret and secret in text:
            return "a secret's bytes were printed"
        if not text.startswith("exit 2"):
            return f"believed: {kit.traceback_in(text) or text.splitlines()[0]} (wanted exit 2)"
        missing = [n for n in names if n not in text]
        return f"the refusal does not name {missing[0]!r}" if missing else None

    return check


def _no_controls(folder: Path, text: str) -> str | None:
    return kit.raw_controls(text.replace("\r\n", "\n"))


def _set(*path: Any, value: Any) -> Edit:
    def edit(data: dict[str, Any], folder: Path) -> None:
        obj = data
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value

    return edit


def _clip(name: str, make: Callable[[Path], Any] | None = None, sha: bool = False) -> Edit:
    """items[0] names the clip ``name`` (made by ``make``; its true sha256 when ``sha``)."""

    def edit(data: dict[str, Any], folder: Path) -> None:
        if make is not None:
            make(folder)
        data["items"][0]["clip"] = name
        if sha:
            data["items"][0]["clip_sha256"] = kit.sha256((folder / name).read_bytes())

    return edit


def _secret(folder: Path) -> None:
    (folder / "secret.env").write_text("password=SECRET-CANARY-TOKEN\n", encoding="utf-8")


def _alias(data: dict[str, Any], folder: Path) -> None:
    data["items"].append({**data["items"][0], "clip": "./" + data["items"][0]["clip"]})


def _flood(data: dict[str, Any], folder: Path) -> None:
    data["items"] = [{**data["items"][0], "caption": f"c{i}"} for i in range(20_000)]


def _swap(data: dict[str, Any], folder: Path) -> None:
    (folder / "clips" / "c1.mp4").write_bytes((folder / "clips" / "c2.mp4").read_bytes())


def _link(target: str) -> Callable[[Path], None]:
    return lambda folder: os.symlink(target, folder / "clips" / "x.mp4")


def file_probes() -> list[Probe]:
    out: list[tuple[str, Callable[[Path], str], Check]] = [
        ("clip_dot_alias_counted_twice", _checked(_alias), _refused("items[4].clip")),
        (
            "clip_secret_with_its_true_sha256",
            _checked(_clip("secret.env", _secret, sha=True)),
            _refused("items[0].clip", secret="SECRET-CANARY-TOKEN"),
        ),
        ("clip_absolute", _checked(_clip("/etc/hostname")), _refused("items[0].clip")),
        ("clip_dotdot", _checked(_clip("clips/../../x.mp4")), _refused("items[0].clip")),
        ("clip_symlink_out", _checked(_clip("clips/x.mp4", _link("/etc/hostname"))), _refused()),
        ("clip_symlink_devzero", _checked(_clip("clips/x.mp4", _link("/dev/zero"))), _refused()),
        (
            "clip_fifo",
            _checked(_clip("clips/x.mp4", lambda f: os.mkfifo(f / "clips" / "x.mp4"))),
            _refused("clips/x.mp4"),
        ),
        (
            "clip_folder",
            _checked(_clip("clips/x.mp4", lambda f: (f / "clips" / "x.mp4").mkdir())),
            _refused("clips/x.mp4"),
        ),
        ("clip_swapped_for_another", _checked(_swap), _refused("clips/c1.mp4")),
        ("items_20000", _checked(_flood), _refused("items")),
        ("version_float", _checked(_set("version", value=1.0)), _refused("version")),
        ("server_model_bool", _checked(_set("server", value={"model": True})), _refused("model")),
        (
            "server_model_object",
            _checked(_set("server", value={"model": {"x": [1]}})),
            _refused("server.model"),
        ),
        (
            "server_fingerprint_1mib",
            _checked(_set("server", value={"system_fingerprint": "F" * 2**20})),
            _refused("system_fingerprint"),
        ),
        (
            "server_identity_unknown_keys",
            _checked(_set("server", value={"identity": {"evil": 1}})),
            _refused("server.identity"),
        ),
        (
            "judge_adapter_100k",
            _checked(_set("judge", "adapter", value="a" * 100_000)),
            _refused("judge.adapter"),
        ),
        (
            "settings_max_pixels_10e300",
            _checked(_set("settings", "max_pixels", value=10**300)),
            _refused("settings.max_pixels"),
        ),
        (
            "expected_nan",
            _checked(_set("items", 0, "distribution", "expected", value=float("nan"))),
            _refused("items[0].distribution.expected"),
        ),
        (
            "probs_infinite",
            _checked(_set("items", 0, "distribution", "probs", value=[float("inf"), 0, 0, 0, 1])),
            _refused("items[0].distribution.probs[0]"),
        ),
        (
            "nested_100k_deep",
            _checked(raw=lambda f: b"[" * 100_000 + b"]" * 100_000),
            _refused("canaries.json"),
        ),
        (
            "duplicate_key",
            _checked(raw=lambda f: b'{"format": "x", "format": "pytest-phyjudge-canaries"}'),
            _refused("format"),
        ),
        (
            "file_20_mib",
            _checked(raw=lambda f: b'{"x": "' + b"x" * (20 * 2**20) + b'"}'),
            _refused("canaries.json"),
        ),
        (
            "versions_10000_packages",
            _checked(_set("versions", value={f"pkg{i}": "1" for i in range(10_000)})),
            _refused("versions"),
        ),
        ("device_400k", _checked(_set("device", value="cuda" * 100_000)), _refused("device")),
        ("adapter_terminal_codes", _checked(_set("judge", "adapter", value=EVIL)), _no_controls),
        (
            "adapter_terminal_codes_drift",
            _checked(_set("judge", "adapter", value=EVIL), judge="other"),
            _no_controls,
        ),
        ("versions_terminal_codes", _checked(_set("versions", "torch", value=EVIL)), _no_controls),
        ("device_terminal_codes", _checked(_set("device", value=EVIL)), _no_controls),
        (
            "server_terminal_codes",
            _checked(_set("server", value={"model": EVIL, "system_fingerprint": EVIL})),
            _no_controls,
        ),
    ]
    probes = [Probe(FILES, f"canary_{name}", run, ANY, check, 30.0) for name, run, check in out]
    probes.append(
        Probe(FILES, "canary_file_is_a_pipe", _pipe_file, ANY, _refused("canaries.json"), 20.0)
    )
    probes.append(Probe(FILES, "canary_pytest_warn_terminal_codes", _warned, ANY, None, 40.0))
    special: dict[str, Callable[[Path], str]] = {
        "a_pipe": lambda f: os.mkfifo(f / "c.json") or "c.json",
        "dev_zero": lambda f: "/dev/zero",
        "a_folder": lambda f: (f / "c.json").mkdir() or "c.json",
        "a_symlink_loop": lambda f: os.symlink("c.json", f / "c.json") or "c.json",
    }
    for name, make in special.items():
        for how in ("flag", "ini"):
            run = _pytest_canaries(make, how)
            probes.append(Probe(FILES, f"canary_pytest_{how}_{name}", run, ANY, None, 40.0))
    return probes


def _pytest_canaries(make: Callable[[Path], str], how: str) -> Callable[[Path], str]:
    """A pytest run whose canary file (by flag or ini) is ``make(folder)``: refused as a
    usage error naming it, before anything is judged, with no hang."""

    def run(folder: Path) -> str:
        _project(folder)
        target = make(folder)
        args: tuple[str, ...] = ("--phyjudge-judge", "judges:same")
        if how == "flag":
            args += ("--phyjudge-canaries", target)
        else:
            (folder / "pytest.ini").write_text(f"[pytest]\nphyjudge_canaries = {target}\n")
        code, out = kit.run_pytest(folder, *args)
        text = _pytest_check(folder, code, out)
        if code != 4 or target not in out:
            raise NotClean(f"pytest exit {code}, wanted a usage error (4) naming {target!r}")
        return text

    return run


def _pipe_file(folder: Path) -> str:
    _judges(folder)
    os.mkfifo(folder / "canaries.json")
    path = str(folder / "canaries.json")
    return cli("canary", "check", path, "--judge", "tally_canary_judges:same")(folder)


SUITE = "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: A ball falls., laws: [gravity]}\n"


def _project(folder: Path, data: dict[str, Any] | None = None, real: bool = False) -> Path:
    """A suite of one clip, the scripted judges, and canaries (``data``) under canary/."""
    kit.clips(folder, "a")
    (folder / "judges.py").write_text(JUDGES, encoding="utf-8")
    (folder / "s.phyjudge.yaml").write_text(SUITE, encoding="utf-8")
    data = data or _canaries(folder / "canary", real=real)
    path = folder / "canary" / "canaries.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _pytest_check(folder: Path, code: int, out: str, summary: Path | None = None) -> str:
    """Raise NotClean for a traceback, a raw control in the terminal, live Markdown in the
    step summary or live HTML in the report."""
    if found := kit.traceback_in(out):
        raise NotClean(f"traceback: {found}")
    if found := kit.raw_controls(out.replace("\r\n", "\n")):
        raise NotClean(f"pytest's terminal output: {found}")
    shown = summary.read_text(encoding="utf-8") if summary and summary.exists() else ""
    if found := kit.live_markdown(shown, marker="EVIL"):
        raise NotClean(f"the step summary: {found}")
    if (folder / "site").exists() and (found := kit.live_html(folder / "site")):
        raise NotClean(f"the HTML report: {found}")
    return f"exit {code}\n{out}"


def _warned(folder: Path) -> str:
    data = _canaries(folder / "canary")
    data["judge"]["adapter"] = EVIL
    path = _project(folder, data)
    summary = folder / "summary.md"
    code, out = kit.run_pytest(
        folder,
        *("--phyjudge-judge", "judges:other", "--phyjudge-canaries", str(path)),
        *("--phyjudge-canary-mode", "warn", "--phyjudge-html", "site", "-rA"),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    return _pytest_check(folder, code, out, summary)


# --------------------------------------------------------------------------- record --out


def _recorded(target: str, make: Callable[[Path], Any] | None = None) -> Callable[[Path], str]:
    """``canary record --out target`` over two real clips, after ``make(folder)``."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.testing import write_test_video

        _judges(folder)
        for seed, name in enumerate(("drop", "roll")):
            write_test_video(folder / "clips" / f"{name}.mp4", frames=4, seed=seed)
        entries = [{"video": n, "prompt": f"A ball {n}s.", "physical_laws": []} for n in ("drop",)]
        (folder / "prompts.json").write_text(json.dumps({"prompts": entries}), encoding="utf-8")
        (folder / "notes.txt").write_text("the user's own notes\n", encoding="utf-8")
        (folder / "mine.json").write_text("{}\n", encoding="utf-8")
        if make is not None:
            make(folder)
        before = {
            p.name: (p.is_symlink(), p.is_fifo(), p.read_bytes() if p.is_file() else None)
            for p in [folder / "clips" / "drop.mp4", *folder.iterdir()]
            if p.name != "__pycache__"
        }
        os.chdir(folder)
        try:
            text = cli(
                *("canary", "record", "--videos", "clips", "--prompts", "prompts.json"),
                *("--axes", "SA", "--out", target, "--judge", "tally_canary_judges:same"),
            )(folder)
        finally:
            os.chdir(folder.parent)
        for p in [folder / "clips" / "drop.mp4", *folder.iterdir()]:
            if p.name in before:
                now = (p.is_symlink(), p.is_fifo(), p.read_bytes() if p.is_file() else None)
                if now != before[p.name]:
                    raise NotClean(f"the user's {p.name} was replaced by canary record")
        return text

    return run


def _read_only_canaries(folder: Path) -> None:
    path = folder / "ro.json"
    path.write_text(json.dumps({"format": "pytest-phyjudge-canaries"}), encoding="utf-8")
    path.chmod(0o444)


def out_probes() -> list[Probe]:
    targets: dict[str, tuple[str, Callable[[Path], Any] | None]] = {
        "a_clip": ("clips/drop.mp4", None),
        "the_prompt_set": ("prompts.json", None),
        "a_users_notes": ("notes.txt", None),
        "a_symlink": ("link.json", lambda f: os.symlink("mine.json", f / "link.json")),
        "a_dangling_symlink": (
            "gone.json",
            lambda f: os.symlink("/nonexistent/x", f / "gone.json"),
        ),
        "a_fifo": ("pipe.json", lambda f: os.mkfifo(f / "pipe.json")),
        "dev_null": ("/dev/null", None),
        "a_read_only_canary_file": ("ro.json", _read_only_canaries),
        "a_folder": ("clips", None),
    }
    return [
        Probe(OUT, f"canary_record_out_{name}", _recorded(target, make), ANY, None, 30.0)
        for name, (target, make) in targets.items()
    ]


# --------------------------------------------------------------------------- reports

CANARY = {
    "file": "c.json",
    "mode": "fail",
    "status": "passed",
    "verdict": "same behaviour",
    "line": "same behaviour: judge-a answers as recorded.",
    "judge_calls": 8,
    "judge_seconds": 0.5,
}


def _report(meta: dict[str, Any]) -> Callable[[Path], str]:
    """``phyjudge report --html`` of a scores.json whose meta carries ``meta``."""

    def run(folder: Path) -> str:
        path = kit.write_scores(folder, lambda data: data["meta"].update(meta))
        return cli("report", str(path), "--html", str(folder / "site"))(folder)

    return run


def _not_shown_passed(folder: Path, text: str) -> str | None:
    """A forged check is refused, or at least never shown as one that passed."""
    if found := kit.traceback_in(text):
        return f"traceback: {found}"
    page = folder / "site" / "index.html"
    if page.exists() and "canaries PASSED" in page.read_text(encoding="utf-8"):
        return "a forged canary check is shown as PASSED"
    return None


def _small_page(folder: Path, text: str) -> str | None:
    if found := kit.traceback_in(text):
        return f"traceback: {found}"
    page = folder / "site" / "index.html"
    if page.exists() and page.stat().st_size > 2**20 // 2:
        return f"a field of megabytes reached the page whole ({page.stat().st_size} bytes)"
    return kit.live_html(folder) if (folder / "site").exists() else None


def _no_server_shown(folder: Path, text: str) -> str | None:
    page = folder / "site" / "index.html"
    if page.exists() and "judge server: model" in page.read_text(encoding="utf-8"):
        return "a judge server is shown for a report whose judges are all in-process"
    return None


def report_probes() -> list[Probe]:
    remote = {"judge": {"kind": "remote", "adapter": "acme/judge-a"}}
    forged: dict[str, dict[str, Any]] = {
        "status_not_a_status": {**CANARY, "status": "PASSED!"},
        "passed_with_a_drift_verdict": {**CANARY, "verdict": "drift"},
        "passed_without_a_verdict": {**CANARY, "verdict": None},
        "passed_with_no_judge_call": {**CANARY, "judge_calls": 0},
        "passed_seconds_a_string": {**CANARY, "judge_seconds": "abc"},
        "passed_seconds_a_list": {**CANARY, "judge_seconds": [1]},
    }
    probes = [
        Probe(REPORTS, f"report_canary_{name}", _report({"canary": c}), ANY, _not_shown_passed)
        for name, c in forged.items()
    ]
    server = {"model": "m", "system_fingerprint": "F" * 2**20, "answered_by": "m"}
    probes.append(
        Probe(
            REPORTS,
            "report_judge_server_fingerprint_1mib",
            _report({**remote, "judge_server": server}),
            ANY,
            _small_page,
        )
    )
    long_line = {**CANARY, "line": "x" * 2**20, "file": "f" * 2**20}
    probes.append(
        Probe(REPORTS, "report_canary_line_1_mib", _report({"canary": long_line}), ANY, _small_page)
    )
    hostile = {"model": EVIL, "system_fingerprint": '<img src=x onerror="xss()">'}
    probes.append(
        Probe(
            REPORTS,
            "report_judge_server_html",
            _report({**remote, "judge_server": hostile}),
            ANY,
            _small_page,
        )
    )
    probes.append(
        Probe(
            REPORTS,
            "report_judge_server_answered_by_object",
            _report({**remote, "judge_server": {"model": "m", "answered_by": {"a": [1]}}}),
            ANY,
            _small_page,
        )
    )
    probes.append(
        Probe(
            REPORTS,
            "report_judge_server_without_a_remote_judge",
            _report(
                {
                    "judge": {"kind": "local", "adapter": "acme/judge-a"},
                    "judges": [{"kind": "local", "adapter": "acme/judge-a"}],
                    "judge_server": {"model": "m", "system_fingerprint": "fp"},
                }
            ),
            ANY,
            _no_server_shown,
        )
    )
    return probes


# --------------------------------------------------------------------------- servers


def _models(model: str = "m", adapter: str = "acme/judge-a", **more: Any) -> Callable[[int], bytes]:
    provenance = {"adapter": adapter, **more}
    body = {"object": "list", "data": [{"id": model, "phyjudge": provenance}]}
    return lambda n: json.dumps(body).encode()


def _chat(model: str = "m", fingerprint: Any = None, logprob: float = -0.01) -> kit.Answer:
    """Replies of a server that answers 4 (with digit log-probabilities when asked)."""

    def answer(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        fp = fingerprint(n) if callable(fingerprint) else fingerprint
        extra = {} if fp is None else {"system_fingerprint": fp}
        reply = json.loads(kit.ok_reply(axis, 4, model=model, **extra))
        if body.get("logprobs"):
            top = [{"token": str(d), "logprob": logprob if d == 4 else -9.0} for d in range(1, 6)]
            reply["choices"][0]["message"]["content"] = "4"
            reply["choices"][0]["logprobs"] = {
                "content": [{"token": "4", "logprob": logprob, "top_logprobs": top}]
            }
        return 200, {}, json.dumps(reply).encode()

    return answer


def _served(
    chat: kit.Answer, models: Callable[[int], bytes], must_fail: bool = False
) -> Callable[[Path], str]:
    """A pytest run with canaries against a server of ours; clean as ``_pytest_check``,
    the report no larger than a few hundred KiB, and (``must_fail``) no passed check."""

    def run(folder: Path) -> str:
        path = _project(folder, real=True)
        summary = folder / "summary.md"
        with kit.FakeServer(chat, models) as server:
            code, out = kit.run_pytest(
                folder,
                *("--phyjudge-url", server.url, "--phyjudge-retries", "0"),
                *("--phyjudge-timeout", "20", "--phyjudge-canaries", str(path)),
                *("--phyjudge-report", "r/scores.json", "--phyjudge-html", "site", "-rA"),
                env={"GITHUB_STEP_SUMMARY": str(summary)},
                limit=80.0,
            )
        text = _pytest_check(folder, code, out, summary)
        report = folder / "r" / "scores.json"
        if report.exists():
            if report.stat().st_size > 2**20 // 2:
                raise NotClean(f"scores.json holds {report.stat().st_size} bytes")
            from pytest_phyjudge._exceptions import InputError
            from pytest_phyjudge.scores import check_scores

            data = json.loads(report.read_text(encoding="utf-8"))
            try:
                check_scores(data, str(report))
            except InputError as exc:
                raise NotClean(f"the run wrote a report its own reader refuses: {exc}") from None
            canary = data["meta"].get("canary") or {}
            if must_fail and canary.get("status") == "passed":
                raise NotClean("the canary check passed against a server that changed or lied")
            if canary.get("verdict") == "could not answer" and not must_fail:
                raise NotClean(f"the probe's canaries were never judged: {canary.get('line')}")
        return text

    return run


def server_probes() -> list[Probe]:
    servers = {
        "models_id_terminal_codes": _served(_chat(model=EVIL), _models(EVIL, EVIL)),
        "fingerprint_terminal_codes": _served(_chat(fingerprint=EVIL), _models()),
        "fingerprint_2_mib": _served(_chat(fingerprint="F" * 2**21), _models()),
        "fingerprint_an_object": _served(_chat(fingerprint={"x": [1]}), _models()),
        "fingerprint_changes": _served(
            _chat(fingerprint=lambda n: f"fp-{n}"), _models(), must_fail=True
        ),
        "nan_logprobs": _served(_chat(logprob=float("nan")), _models(), must_fail=True),
        "models_adapter_1_mib": _served(_chat(), _models(adapter="acme/" + "A" * 2**20)),
        "models_revision_an_object": _served(_chat(), _models(revision={"x": [1]})),
        "models_base_terminal_codes": _served(_chat(), _models(base=EVIL)),
    }
    return [
        Probe(SERVERS, f"canary_server_{name}", run, ANY, None, 90.0)
        for name, run in servers.items()
    ]


def canary_probes() -> list[Probe]:
    return [*file_probes(), *out_probes(), *report_probes(), *server_probes()]
