"""The canary file: its typed model, and the one place it is read (every field checked, each
problem naming its JSON path) and written.

Threat model: a canary file may come from anyone (a colleague's pull request, a CI artifact).
Its worst content: a clip path that leads out of the file's folder (absolute, ``..``, a
symbolic link out) or to a pipe or device, a field of another type, a number that is not
finite, a key twice, nesting that never ends. Clip paths are relative to the file and must
stay inside its folder once every link is followed; only regular files are read, and their
bytes are checked against the recorded sha256 before anything is judged. Nothing in the file
is run or imported; the judge comes from the command line. The file is written whole or not
at all (``write_json_atomic``); it holds no clip bytes, only paths and digests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import FileProblem, not_a_file, read_json_file, resolve_path
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE, check_axis
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.video import sha256_file

FORMAT = "pytest-phyjudge-canaries"
VERSION = 1
#: The settings recorded (and compared) besides the scoring, which a canary holds both of.
SETTING_NAMES = ("fps", "max_pixels", "max_new_tokens")
DIGITS = MAX_SCORE - MIN_SCORE + 1
#: Probabilities may sum to a little off 1 (read from top log-probabilities, rounded).
PROBABILITY_SLACK = 1e-3
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IDENTITY_FIELDS = ("kind", "adapter", "revision", "base", "adapter_sha256")


@dataclass(frozen=True)
class Reading:
    """One judgment of one canary item: the greedy reply and digit (None: no digit in the
    reply), and the digit distribution (None: the judge gives none; compared as one-hot on
    the digit of its distribution pass) with its expected score."""

    reply: str | None
    digit: int | None
    probs: tuple[float, ...] | None
    expected: float | None

    def distribution(self) -> tuple[float, ...] | None:
        """The probabilities of 1..5; one-hot on the digit where the judge gave none."""
        if self.probs is not None:
            return self.probs
        if self.expected is None:
            return None
        digit = round(self.expected)
        return tuple(1.0 if d == digit else 0.0 for d in range(MIN_SCORE, MAX_SCORE + 1))


@dataclass(frozen=True)
class CanaryItem:
    """One (clip, caption, axis) with what the trusted judge answered."""

    clip: str
    clip_sha256: str
    caption: str
    axis: str
    prompt_sha256: str
    reading: Reading

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.clip, self.caption, self.axis)


@dataclass(frozen=True)
class Setup:
    """Who judged and how: what a check compares as the judge's identity (``judge`` and the
    server's ``model``), and what it only shows (device, dtype, versions, fingerprint)."""

    judge: JudgeIdentity
    settings: Mapping[str, Any]
    server: Mapping[str, Any] | None = None
    device: str | None = None
    dtype: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)

    def claimed(self) -> tuple[Any, ...]:
        """What the judge says it is: its identity, and the model a server names."""
        model = None if self.server is None else self.server.get("model")
        return (self.judge, model)

    def describe(self) -> str:
        model = None if self.server is None else self.server.get("model")
        sha = self.judge.adapter_sha256
        return (
            self.judge.describe()
            + (f" [adapter sha256 {sha[:12]}]" if sha else "")
            + (f", served as {model}" if model else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge.to_dict(),
            "settings": dict(self.settings),
            "server": None if self.server is None else dict(self.server),
            "device": self.device,
            "dtype": self.dtype,
            "versions": dict(self.versions),
        }


@dataclass(frozen=True)
class CanaryFile:
    setup: Setup
    items: tuple[CanaryItem, ...]
    created: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            **self.setup.to_dict(),
            "items": [
                {
                    "clip": item.clip,
                    "clip_sha256": item.clip_sha256,
                    "caption": item.caption,
                    "axis": item.axis,
                    "prompt_sha256": item.prompt_sha256,
                    "greedy": {"reply": item.reading.reply, "digit": item.reading.digit},
                    "distribution": {
                        "probs": None if item.reading.probs is None else list(item.reading.probs),
                        "expected": item.reading.expected,
                    },
                }
                for item in self.items
            ],
        }


# --------------------------------------------------------------------------- reading


class _Fields:
    """Checks of one JSON object, each failure an InputError naming the file and path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(
            f"{self.path}: {where} {problem}. A canary file is written by "
            "'phyjudge canary record'; record it again, or fix that field."
        )

    def object(self, value: Any, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()):
        if not isinstance(value, dict):
            raise self.fail(where, f"is {type(value).__name__}, not an object")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(where, f"lacks {', '.join(map(repr, missing))}")
        extra = [k for k in value if k not in keys and k not in optional]
        if extra:
            raise self.fail(where, f"holds unknown keys {', '.join(map(repr, extra[:5]))}")
        return value

    def text(self, value: Any, where: str, *, none: bool = False) -> Any:
        if value is None and none:
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"is {type(value).__name__}, not a string")
        return value

    def sha256(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise self.fail(where, "is not a sha256 (64 lowercase hex digits)")
        return value

    def number(self, value: Any, where: str, low: float, high: float, *, none: bool = False):
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"is {type(value).__name__}, not a number")
        if not math.isfinite(value) or not low <= value <= high:
            raise self.fail(where, f"is {value!r}, not a finite number in [{low}, {high}]")
        return value

    def digit(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"is {value!r}, not a digit {MIN_SCORE}-{MAX_SCORE} or null")
        return int(self.number(value, where, MIN_SCORE, MAX_SCORE))


def _clip_path(fields: _Fields, value: Any, where: str) -> str:
    """A clip path as the file may hold it: relative, POSIX, no ``..``, no empty part."""
    text = fields.text(value, where)
    pure = PurePosixPath(text)
    if (
        not text
        or "\\" in text
        or "\x00" in text
        or pure.is_absolute()
        or any(part in ("..", "") for part in text.split("/"))
        or re.match(r"[A-Za-z]:", text)
    ):
        raise fields.fail(
            where,
            f"is {text!r}: a clip path must be relative to the canary file's folder and stay "
            "inside it (no absolute path, no '..')",
        )
    return text


def read_canaries(path: str | Path) -> CanaryFile:
    """The canary file at ``path``, every field checked; an InputError naming the first
    problem by its JSON path (``items[3].distribution.probs[2]``)."""
    path = Path(path)
    try:
        data = read_json_file(path, unique_keys=True)
    except FileProblem as problem:
        line = f" (line {problem.line})" if problem.line else ""
        raise InputError(
            f"The canary file {str(path)!r}{line} {problem.reason}; give the file "
            "'phyjudge canary record' wrote."
        ) from None
    f = _Fields(path)
    top = ("format", "version", "created", "judge", "settings", "server", "device", "dtype")
    f.object(data, "the document", (*top, "versions", "items"))
    if data["format"] != FORMAT:
        raise f.fail("format", f"is {data['format']!r}, not {FORMAT!r}")
    if data["version"] != VERSION or isinstance(data["version"], bool):
        raise f.fail(
            "version", f"is {data['version']!r}; this version of pytest-phyjudge reads {VERSION}"
        )
    judge = f.object(data["judge"], "judge", _IDENTITY_FIELDS)
    f.text(judge["kind"], "judge.kind")
    f.text(judge["adapter"], "judge.adapter")
    for name in ("revision", "base", "adapter_sha256"):
        f.text(judge[name], f"judge.{name}", none=True)
    settings = f.object(data["settings"], "settings", SETTING_NAMES)
    f.number(settings["fps"], "settings.fps", 1e-6, 1e6)
    for name in ("max_pixels", "max_new_tokens"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise f.fail(f"settings.{name}", f"is {value!r}, not a whole number of at least 1")
    server = data["server"]
    if server is not None:
        f.object(server, "server", (), ("model", "identity", "answered_by", "system_fingerprint"))
        for key, value in server.items():
            if not (value is None or isinstance(value, str | dict | int)):
                raise f.fail(f"server.{key}", f"is {type(value).__name__}")
    f.text(data["created"], "created", none=True)
    f.text(data["device"], "device", none=True)
    f.text(data["dtype"], "dtype", none=True)
    versions = data["versions"]
    if not isinstance(versions, dict):
        raise f.fail("versions", "is not an object of package names to versions")
    for name, version in versions.items():
        f.text(version, f"versions.{name}")
    if not isinstance(data["items"], list) or not data["items"]:
        raise f.fail("items", "is not a list of at least one canary")
    items: list[CanaryItem] = []
    seen: set[tuple[str, str, str]] = set()
    for index, raw in enumerate(data["items"]):
        at = f"items[{index}]"
        keys = ("clip", "clip_sha256", "caption", "axis", "prompt_sha256", "greedy")
        f.object(raw, at, (*keys, "distribution"))
        axis = f.text(raw["axis"], f"{at}.axis")
        try:
            check_axis(axis)
        except InputError:
            raise f.fail(f"{at}.axis", f"is {axis!r}, not a metric or law") from None
        greedy = f.object(raw["greedy"], f"{at}.greedy", ("reply", "digit"))
        dist = f.object(raw["distribution"], f"{at}.distribution", ("probs", "expected"))
        probs = dist["probs"]
        if probs is not None:
            if not isinstance(probs, list) or len(probs) != DIGITS:
                raise f.fail(f"{at}.distribution.probs", f"is not a list of {DIGITS} numbers")
            for i, p in enumerate(probs):
                f.number(p, f"{at}.distribution.probs[{i}]", 0.0, 1.0)
            if abs(sum(probs) - 1.0) > PROBABILITY_SLACK:
                raise f.fail(f"{at}.distribution.probs", f"sums to {sum(probs)!r}, not 1")
            probs = tuple(float(p) for p in probs)
        expected = f.number(
            dist["expected"], f"{at}.distribution.expected", MIN_SCORE, MAX_SCORE, none=True
        )
        item = CanaryItem(
            clip=_clip_path(f, raw["clip"], f"{at}.clip"),
            clip_sha256=f.sha256(raw["clip_sha256"], f"{at}.clip_sha256"),
            caption=f.text(raw["caption"], f"{at}.caption"),
            axis=axis,
            prompt_sha256=f.sha256(raw["prompt_sha256"], f"{at}.prompt_sha256"),
            reading=Reading(
                reply=f.text(greedy["reply"], f"{at}.greedy.reply", none=True),
                digit=f.digit(greedy["digit"], f"{at}.greedy.digit"),
                probs=probs,
                expected=None if expected is None else float(expected),
            ),
        )
        if item.key in seen:
            raise f.fail(at, f"repeats the clip {item.clip!r} on the axis {axis!r}")
        seen.add(item.key)
        items.append(item)
    setup = Setup(
        judge=JudgeIdentity(**judge),
        settings=dict(settings),
        server=server,
        device=data["device"],
        dtype=data["dtype"],
        versions=dict(versions),
    )
    return CanaryFile(setup=setup, items=tuple(items), created=data["created"])


def clip_file(canary_path: str | Path, clip: str) -> Path:
    """Where the canary file's ``clip`` is: inside the file's folder once every link is
    followed, a regular file. An InputError naming the clip otherwise."""
    folder = resolve_path(Path(canary_path)).parent
    target = resolve_path(folder / clip)
    if not target.is_relative_to(folder):
        raise InputError(
            f"The canary clip {clip!r} leads out of the canary file's folder ({str(folder)!r}) "
            "through a symbolic link; a canary's clips must lie inside its folder."
        )
    kind = not_a_file(target)
    if kind is not None:
        raise InputError(f"The canary clip {clip!r} is {kind}, not a video file.")
    if not target.exists():
        raise InputError(
            f"The canary clip {clip!r} is missing (looked for {str(target)!r}); a canary "
            "check needs the very clips it was recorded on."
        )
    return target


def verified_clips(canary_path: str | Path, canaries: CanaryFile) -> dict[str, Path]:
    """Every clip of ``canaries`` found and its bytes checked against the recorded sha256,
    before anything is judged."""
    found: dict[str, Path] = {}
    for item in canaries.items:
        if item.clip in found:
            continue
        path = clip_file(canary_path, item.clip)
        digest = sha256_file(path)
        if digest != item.clip_sha256:
            raise InputError(
                f"The canary clip {item.clip!r} has changed: its sha256 is {digest}, the "
                f"canary file recorded {item.clip_sha256}. Restore the clip, or record the "
                "canaries again on a judge you trust."
            )
        found[item.clip] = path
    return found


def relative_clip(canary_path: str | Path, clip: Path) -> str:
    """``clip`` as a canary file at ``canary_path`` names it: relative to its folder. A clip
    outside that folder is refused (the file could not name it safely)."""
    folder = resolve_path(Path(canary_path)).parent
    target = resolve_path(clip)
    if not target.is_relative_to(folder):
        raise InputError(
            f"The clip {str(clip)!r} is not inside the folder of --out ({str(folder)!r}); a "
            "canary file names its clips relative to its own folder. Write --out in a folder "
            "that holds --videos (e.g. beside it)."
        )
    return target.relative_to(folder).as_posix()
