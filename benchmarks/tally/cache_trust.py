"""Cache import, export and replay trust (issue 19, item 5). A real cache is recorded once
per child (a pytest run against a judge server of our own, which says it serves a tiny
judge), exported, then tampered with the way an attacker with write access to the export
would: a conflicting record, a raw reply that disagrees with its score, another axis's or
another video's judgment under this key, a claim to be PhyJudge-9B. And export targets
that are the cache's own files, FIFOs or a user's files.

Clean is judged on the outcome: the stored judgment is unchanged (read back by export),
the replayed report does not show the tampered score, the report does not name
PhyJudge-9B as a meaningful judge, the cache still holds every judgment, the user's file is
intact, nothing hangs. A refusal is as clean as a record that was not believed.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect
from tally.probes import cli

IMPORT = "cache: import conflicts and trust"
EXPORT = "cache: export and import targets"
ANY = expect("returned", "error")
SCORES = {"SA": 2, "PTV": 3, "persistence": 3, "gravity": 4}
NINE_B = "NU-World-Model-Embodied-AI/phyjudge-9B"
_BASE: dict[str, Path] = {}
_READBACKS = itertools.count()


def _base(scratch: Path) -> Path:
    """A folder with a suite, its clips, a recorded cache and its export (once per child)."""
    if "folder" in _BASE:
        return _BASE["folder"]
    where = scratch / "_cachebase"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    kit.suite(where)

    def chat(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, kit.ok_reply(axis, SCORES.get(axis, 3))

    models = lambda n: kit.models_reply(adapter="acme/tiny-judge", kind="tiny")  # noqa: E731
    with kit.FakeServer(chat, models) as server:
        _code, out = kit.run_pytest(
            where,
            "--phyjudge-url",
            server.url,
            "--phyjudge-cache",
            "cache",
            "--phyjudge-retries",
            "0",
        )
    cli("cache", "export", str(where / "base.jsonl"), "--cache", str(where / "cache"))(where)
    if not (where / "base.identity.json").is_file():
        raise RuntimeError(f"could not record the base cache:\n{out}")
    _BASE["folder"] = where
    return where


def _copy(folder: Path) -> None:
    base = _base(folder.parent)
    for item in base.iterdir():
        target = folder / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _find(records: list[dict[str, Any]], axis: str, video: str) -> dict[str, Any]:
    for record in records:
        judgment = record.get("judgment")
        if judgment and judgment["key"] == axis and judgment["video"].endswith(f"/{video}.mp4"):
            return record
    raise RuntimeError(f"no {axis} record of {video} in the export")


def _stored(folder: Path, cache: str = "cache") -> list[dict[str, Any]]:
    """What the cache holds, read back by a fresh export (into new files each time: an
    export rightly refuses to overwrite the identity file of an earlier one)."""
    out = folder / f"readback-{next(_READBACKS)}.jsonl"
    cli("cache", "export", str(out), "--cache", str(folder / cache))(folder)
    return [r for r in _lines(out) if "judgment" in r] if out.is_file() else []


# --------------------------------------------------------------------------- conflicts


def _conflict_existing(folder: Path) -> str:
    """Import, into the recorded cache, b's gravity under its own key with another score."""
    _copy(folder)
    records = _lines(folder / "base.jsonl")
    record = _find(records, "gravity", "b")
    forged = json.loads(json.dumps(record))
    forged["judgment"].update(score=1, raw='{"gravity": 1}')
    _write(folder / "in.jsonl", [forged])
    text = cli("cache", "import", str(folder / "in.jsonl"), "--cache", str(folder / "cache"))(
        folder
    )
    now = {r["key"]: r["judgment"] for r in _stored(folder)}
    if now.get(record["key"], {}).get("score") == 1:
        raise NotClean(f"the stored judgment was replaced by the import: {kit_line(text)}")
    return text


def _conflict_in_file(folder: Path) -> str:
    """Import a file holding b's gravity twice, 4 then 1, into a fresh cache."""
    _copy(folder)
    records = _lines(folder / "base.jsonl")
    record = _find(records, "gravity", "b")
    forged = json.loads(json.dumps(record))
    forged["judgment"].update(score=1, raw='{"gravity": 1}')
    _write(folder / "in.jsonl", [*records, forged])
    text = cli("cache", "import", str(folder / "in.jsonl"), "--cache", str(folder / "fresh"))(
        folder
    )
    now = {r["key"]: r["judgment"] for r in _stored(folder, "fresh")}
    if now.get(record["key"], {}).get("score") == 1 and text.startswith("exit 0"):
        raise NotClean(f"a later line silently replaced an earlier judgment: {kit_line(text)}")
    return text


def kit_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:3])[:160]


# --------------------------------------------------------------------------- replays


def _replay(
    tamper: Callable[[list[dict[str, Any]], dict[str, Any]], None],
    judge: Callable[[dict[str, Any]], str | None],
    identity: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Path], str]:
    """Tamper with the export (``tamper(records, b_gravity)``), import it into a fresh
    cache, replay the suite from it, and let ``judge(report)`` say what is wrong."""

    def run(folder: Path) -> str:
        _copy(folder)
        shutil.rmtree(folder / "cache")
        records = _lines(folder / "base.jsonl")
        tamper(records, _find(records, "gravity", "b"))
        _write(folder / "in.jsonl", records)
        ident = folder / "base.identity.json"
        if identity is not None:
            data = json.loads(ident.read_text(encoding="utf-8"))
            identity(data)
            ident.write_text(json.dumps(data), encoding="utf-8")
        text = cli("cache", "import", str(folder / "in.jsonl"), "--cache", str(folder / "cache"))(
            folder
        )
        if not text.startswith("exit 0"):
            return text  # the import refused the tampered file: clean, nothing to replay
        code, out = kit.run_pytest(
            folder,
            "--phyjudge-cache",
            "cache",
            "--phyjudge-cache-mode",
            "only",
            "--phyjudge-identity",
            str(ident),
            "--phyjudge-report",
            "replay.json",
        )
        report = folder / "replay.json"
        if report.is_file():
            problem = judge(json.loads(report.read_text(encoding="utf-8")))
            if problem:
                raise NotClean(problem)
        return f"{text}\npytest exit {code}\n{out}"

    return run


def _gravity_b_is(bad: int) -> Callable[[dict[str, Any]], str | None]:
    def judge(report: dict[str, Any]) -> str | None:
        a = [r for r in report.get("results", []) if r.get("video") == "a"]
        law_a = (a[0].get("physical") or {}).get("laws", {}).get("gravity") or {} if a else {}
        if law_a.get("score") != SCORES["gravity"]:
            return f"control failed: the untouched record of a did not replay ({law_a})"
        for row in report.get("results", []):
            if row.get("video") == "b":
                law = (row.get("physical") or {}).get("laws", {}).get("gravity") or {}
                if law.get("score") == bad:
                    return f"the replay reported b's gravity as {bad}, the tampered record's score"
        return None

    return judge


def _claims_nine_b(report: dict[str, Any]) -> str | None:
    meta = report.get("meta") or {}
    named = json.dumps([meta.get("judge"), meta.get("judges")]).lower()
    if NINE_B.lower() in named and meta.get("scores_meaningless") is False:
        return "the report names PhyJudge-9B as its judge, scores_meaningless: false"
    return None


def _set(**change: Any) -> Callable[[list[dict[str, Any]], dict[str, Any]], None]:
    def tamper(records: list[dict[str, Any]], record: dict[str, Any]) -> None:
        record["judgment"].update(change)

    return tamper


def _as_sa(records: list[dict[str, Any]], record: dict[str, Any]) -> None:
    record["judgment"] = json.loads(json.dumps(_find(records, "SA", "b")["judgment"]))


def _claim(records: list[dict[str, Any]], record: dict[str, Any]) -> None:
    for r in records:
        if "judgment" in r:
            r["judgment"]["judge"] = {"kind": "local", "adapter": NINE_B, "revision": "main"}
        if "judge_record" in r:
            r["judge_record"]["judge"].update(kind="local", adapter=NINE_B)


def _claim_judgments(records: list[dict[str, Any]], record: dict[str, Any]) -> None:
    for r in records:
        if "judgment" in r:
            r["judgment"]["judge"] = {"kind": "local", "adapter": NINE_B, "revision": "main"}


REPLAYS: dict[str, tuple[Any, Any, Any]] = {
    "raw_4_score_5": (_set(score=5), _gravity_b_is(5), None),
    "raw_1_score_5": (_set(score=5, raw='{"gravity": 1}'), _gravity_b_is(5), None),
    "raw_unparseable_score_5": (_set(score=5, raw="no idea"), _gravity_b_is(5), None),
    "sa_judgment_under_gravity_key": (_as_sa, _gravity_b_is(2), None),
    "axis_field_sa_score_1": (_set(key="SA", score=1, raw='{"SA": 1}'), _gravity_b_is(1), None),
    "other_video_sha": (
        _set(video_sha256="0" * 63 + "1", score=1, raw='{"gravity": 1}'),
        _gravity_b_is(1),
        None,
    ),
    "other_prompt_sha": (
        _set(prompt_sha256="f" * 64, score=1, raw='{"gravity": 1}'),
        _gravity_b_is(1),
        None,
    ),
    "other_judge_claim": (
        _set(judge={"kind": "remote", "adapter": "evil/judge"}, score=1, raw='{"gravity": 1}'),
        _gravity_b_is(1),
        None,
    ),
    "records_claim_phyjudge_9b": (_claim, _claims_nine_b, None),
    "judgments_claim_phyjudge_9b": (_claim_judgments, _claims_nine_b, None),
}


def imports() -> Iterator[Probe]:
    yield Probe(IMPORT, "import_conflict_existing_key", _conflict_existing, ANY, None, 40.0)
    yield Probe(IMPORT, "import_conflict_within_file", _conflict_in_file, ANY, None, 40.0)
    for name, (tamper, judge, identity) in REPLAYS.items():
        yield Probe(IMPORT, f"replay_{name}", _replay(tamper, judge, identity), ANY, None, 45.0)


# --------------------------------------------------------------------------- targets


def _count_kept(action: Callable[[Path], str]) -> Callable[[Path], str]:
    """``action`` on the recorded cache; then the cache must still hold every judgment."""

    def run(folder: Path) -> str:
        _copy(folder)
        before = len(_stored(folder))
        text = action(folder)
        after = len(_stored(folder))
        if after < before:
            raise NotClean(f"the cache lost judgments ({before} before, {after} after)")
        return text

    return run


def _export_to(target: Callable[[Path], str]) -> Callable[[Path], str]:
    def action(folder: Path) -> str:
        return cli("cache", "export", target(folder), "--cache", str(folder / "cache"))(folder)

    return action


def _keeps_user_file(prepare: Callable[[Path], tuple[str, list[Path]]]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        _copy(folder)
        target, files = prepare(folder)
        before = kit.snapshot(*files)
        text = cli("cache", "export", target, "--cache", str(folder / "cache"))(folder)
        if problem := kit.changed(before):
            raise NotClean(problem)
        return text

    return run


def _fifo(name: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        os.mkfifo(folder / name)
        return str(folder / name)

    return make


def _user_out(folder: Path) -> tuple[str, list[Path]]:
    return str(folder / "judgments.jsonl"), kit.user_files(folder, "judgments.jsonl")


def _user_identity(folder: Path) -> tuple[str, list[Path]]:
    return str(folder / "judgments.jsonl"), kit.user_files(folder, "judgments.identity.json")


def _user_link(folder: Path) -> tuple[str, list[Path]]:
    made = kit.user_files(folder, "elsewhere/keep.txt")
    (folder / "judgments.jsonl").symlink_to(made[0])
    return str(folder / "judgments.jsonl"), made


def _import_from(source: Callable[[Path], str]) -> Callable[[Path], str]:
    def action(folder: Path) -> str:
        return cli("cache", "import", source(folder), "--cache", str(folder / "cache"))(folder)

    return action


def targets() -> Iterator[Probe]:
    own = {
        "export_into_own_db": lambda f: str(f / "cache" / "judgments.sqlite3"),
        "export_into_own_wal": lambda f: str(f / "cache" / "judgments.sqlite3-wal"),
        "export_into_own_shm": lambda f: str(f / "cache" / "judgments.sqlite3-shm"),
        "export_into_own_db_via_dotdot": lambda f: str(
            f / "cache" / ".." / "cache" / "judgments.sqlite3"
        ),
    }
    for name, target in own.items():
        yield Probe(EXPORT, name, _count_kept(_export_to(target)), ANY, None, 30.0)
    yield Probe(
        EXPORT, "export_into_fifo", _count_kept(_export_to(_fifo("out.jsonl"))), ANY, None, 15.0
    )
    yield Probe(
        EXPORT, "export_dev_full", _count_kept(_export_to(lambda f: "/dev/full")), ANY, None, 20.0
    )
    yield Probe(EXPORT, "export_over_user_file", _keeps_user_file(_user_out), ANY, None, 20.0)
    yield Probe(
        EXPORT, "export_identity_over_user_file", _keeps_user_file(_user_identity), ANY, None, 20.0
    )
    yield Probe(EXPORT, "export_through_symlink", _keeps_user_file(_user_link), ANY, None, 20.0)
    yield Probe(
        EXPORT, "import_from_fifo", _count_kept(_import_from(_fifo("in.jsonl"))), ANY, None, 15.0
    )
    yield Probe(
        EXPORT,
        "import_own_db",
        _count_kept(_import_from(lambda f: str(f / "cache" / "judgments.sqlite3"))),
        ANY,
        None,
        20.0,
    )


def cache_probes() -> list[Probe]:
    return [*imports(), *targets()]
