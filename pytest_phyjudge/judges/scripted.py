"""A scripted judge: canned replies, no model. For testing pass/fail logic, never for scoring.

Its identity says ``scripted`` in every Judgment and report, so its scores cannot pass for
the real judge's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeOutputError
from pytest_phyjudge.engine.axes import ALL_AXES, check_axis
from pytest_phyjudge.engine.judgment import Completion, JudgeIdentity, Judgment
from pytest_phyjudge.engine.rubric import Rubric, load_rubric
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.base import Judge

_ANSWER_KEY = re.compile(r'\{"(\w+)":')

#: A reply: an int score (wrapped as the model would write it) or a raw reply string.
Reply = int | str
ReplyFunction = Callable[[str, str, Path], Reply]


def _check_reply(axis: str, reply: object) -> Reply:
    """``reply`` if it is a reply (an int score, not a bool, or a raw reply string); an
    InputError naming the axis otherwise, before it reaches the reply parser."""
    if isinstance(reply, bool) or not isinstance(reply, (int, str)):
        raise InputError(
            f"ScriptedJudge's reply for {axis!r} is {type(reply).__name__} {reply!r}; a reply "
            'is an int score (written as {"<axis>": n}) or the raw reply text.'
        )
    return reply


class ScriptedJudge(Judge):
    """Replies from ``replies``: a mapping axis -> reply (``"*"`` for any other axis), or a
    function ``(axis, caption, video) -> reply``. An int ``n`` becomes ``{"axis": n}``; a
    string is used as the raw reply and parsed like the model's (so tests can script
    unparseable replies). The video must exist, as for the real judge; it is not decoded.
    """

    def __init__(
        self,
        replies: Mapping[str, Reply] | ReplyFunction,
        *,
        name: str = "scripted",
        rubric: Rubric | None = None,
    ) -> None:
        if not callable(replies):
            if not isinstance(replies, Mapping):
                raise InputError(
                    f"ScriptedJudge replies are {type(replies).__name__}; give a mapping of "
                    "axis to reply ('*' for every other axis) or a function "
                    "(axis, caption, video) -> reply."
                )
            for axis, reply in replies.items():
                if axis != "*":
                    check_axis(axis)
                _check_reply(axis, reply)
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                f"ScriptedJudge name is {type(name).__name__} {name!r}; give it a name as "
                "non-empty text (it names the judge in every report)."
            )
        if rubric is not None and not isinstance(rubric, Rubric):
            raise InputError(
                f"ScriptedJudge rubric is {type(rubric).__name__}; give a Rubric "
                "(load_rubric(...)) or leave it out for PhyJudge's own."
            )
        self.replies = replies
        self.rubric = rubric or load_rubric(None)
        self.identity = JudgeIdentity(kind="scripted", adapter=name)
        self.settings = {"scoring": "scripted"}
        self.calls: list[tuple[str, str, str]] = []

    def _reply(self, axis: str, caption: str, video: Path) -> Reply:
        if callable(self.replies):
            return _check_reply(axis, self.replies(axis, caption, video))
        if axis in self.replies:
            return self.replies[axis]
        if "*" in self.replies:
            return self.replies["*"]
        raise InputError(
            f"ScriptedJudge has no reply for {axis!r} and no '*' default; add {axis!r} or "
            "'*' to its replies."
        )

    def _raw(self, axis: str, caption: str, video: Path) -> str:
        self.calls.append((str(video), caption, axis))
        reply = self._reply(axis, caption, video)
        return f'{{"{axis}": {reply}}}' if isinstance(reply, int) else reply

    def complete(
        self, messages: list[dict[str, Any]], *, max_new_tokens: int | None = None
    ) -> Completion:
        """The scripted reply to chat messages, so that a JudgeServer can serve this judge
        (to test clients without a model). The axis is the last answer key the user text
        shows (``{"gravity": ...``); the caption is not recovered and is given as ``""``."""
        texts, videos = [], []
        for message in messages:
            if message.get("role") != "user":
                continue
            for part in message.get("content") or []:
                if part.get("type") == "text":
                    texts.append(part["text"])
                elif part.get("type") == "video":
                    videos.append(Path(part["video"]))
        keys = [key for key in _ANSWER_KEY.findall(" ".join(texts)) if key in ALL_AXES]
        if not keys or len(videos) != 1:
            raise InputError(
                "A scripted judge serves prompts that name an axis in their answer format "
                "and hold exactly one video."
            )
        raw = self._raw(keys[-1], "", videos[0])
        return Completion(text=raw, prompt_tokens=len(" ".join(texts).split()), completion_tokens=1)

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | JudgeOutputError]:
        video_sha = sha256_file(video)
        results: dict[str, Judgment | JudgeOutputError] = {}
        for axis in axes:
            started = time.perf_counter()
            raw = self._raw(axis, caption, video)
            rendered = self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            results[axis] = self._judgment(
                axis,
                raw,
                video=video,
                video_sha256=video_sha,
                prompt_sha256=rendered.sha256,
                seconds=time.perf_counter() - started,
                caption=caption,
            )
        return results
