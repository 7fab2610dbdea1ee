"""One kit for in-process pytester runs: scripted judges, suites and clips in ``pytester.path``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import pytest

from pytest_phyjudge.testing import write_test_video

#: ``judges.py``: SCRIPTED judges (``judges:make``, ``judges:make_other``, differing only in
#: their names) whose reply for each axis is the score the stand-in clip holds as JSON
#: (``{"gravity": 2, "*": 4}``), so a test changes a score by rewriting a clip; and
#: ``judges:generate``, a generator writing such a clip with the score ``scores[seed]`` that
#: logs each seed to ``seeds.txt``.
CLIP_JUDGES = Template(
    """
import json
from pathlib import Path
from pytest_phyjudge import ScriptedJudge

def reply(axis, caption, video):
    scores = json.loads(Path(video).read_text())
    return scores.get(axis, scores.get("*"))

def make():
    return ScriptedJudge(reply, name=$name)

def make_other():
    return ScriptedJudge(reply, name=$other)

def generate(prompt, seed, out_path, scores):
    with open("seeds.txt", "a") as fh:
        fh.write(f"{seed}\\n")
    Path(out_path).write_text(json.dumps({"*": scores[seed]}))
"""
)

#: ``conftest.py``: one SCRIPTED judge with fixed replies for the whole run, made by the
#: ``pytest_phyjudge_make_judge`` hook; every (video, caption, axis) it was asked about is
#: written to ``judge_calls.json`` when the run ends.
SCRIPTED_CONFTEST = Template(
    """
import json
from pytest_phyjudge import ScriptedJudge

JUDGE = ScriptedJudge($replies, name=$name)

def pytest_phyjudge_make_judge(config):
    return JUDGE

def pytest_unconfigure(config):
    with open("judge_calls.json", "w") as fh:
        json.dump(JUDGE.calls, fh)
"""
)


@dataclass(frozen=True)
class Kit:
    """Writes the files of a pytester run: judges, a judging conftest, suites, clips."""

    pytester: pytest.Pytester

    def module(self, name: str, source: str) -> Path:
        """``<name>.py``, importable by the run (``--phyjudge-judge <name>:<factory>``)."""
        path = self.pytester.makepyfile(**{name: source})
        self.pytester.syspathinsert()
        return path

    def judges(self, name: str = "scripted", other: str = "scripted-other") -> Path:
        """The clip-reading scripted judges of :data:`CLIP_JUDGES`, named ``name`` (``make``)
        and ``other`` (``make_other``)."""
        return self.module("judges", CLIP_JUDGES.substitute(name=repr(name), other=repr(other)))

    def conftest(
        self, replies: Mapping[str, Any] | None = None, name: str = "scripted", extra: str = ""
    ) -> Path:
        """The conftest of :data:`SCRIPTED_CONFTEST` replying ``replies`` (every axis 4 by
        default), with ``extra`` source appended."""
        replies = dict(replies) if replies is not None else {"*": 4}
        source = SCRIPTED_CONFTEST.substitute(replies=repr(replies), name=repr(name))
        return self.pytester.makeconftest(source + extra)

    def suite(self, text: str, name: str = "basics") -> Path:
        """``<name>.phyjudge.yaml`` holding ``text`` (dedented; its first line is line 1)."""
        return self.pytester.makefile(".phyjudge.yaml", **{name: text})

    def clip(self, name: str, content: Mapping[str, Any] | bytes | None = None) -> Path:
        """The stand-in clip ``clips/<name>.mp4``, never decoded: the scores the clip-reading
        judges reply (a mapping, written as JSON), the given bytes (a real video, say), or by
        default a few bytes of its name (distinct clips, distinct hashes)."""
        if content is None:
            data = f"not really a video: {name}".encode()
        elif isinstance(content, bytes):
            data = content
        else:
            data = json.dumps(dict(content)).encode()
        path = self.pytester.path / "clips" / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def videos(self, names: Iterable[str], **options: Any) -> list[Path]:
        """Real decodable clips ``clips/<name>.mp4`` (the i-th drawn with seed i)."""
        folder = self.pytester.path / "clips"
        return [
            write_test_video(folder / f"{name}.mp4", seed=seed, **options)
            for seed, name in enumerate(names)
        ]

    def read_json(self, name: str) -> Any:
        """The JSON file ``name`` (relative to ``pytester.path``) the run wrote."""
        return json.loads((self.pytester.path / name).read_text())

    def report(self, name: str = "out/scores.json") -> Any:
        """The run's JSON report (``--phyjudge-report out/scores.json`` by default)."""
        return self.read_json(name)

    def calls(self) -> list[list[str]]:
        """The (video, caption, axis) calls the conftest's scripted judge logged."""
        return self.read_json("judge_calls.json")


class FakeClock:
    """Monotonic time that moves only when told to, or when the judge sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
