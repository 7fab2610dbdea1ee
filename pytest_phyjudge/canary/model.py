"""The canary file: its typed model, and the one place it is read (every field checked, each
problem naming its JSON path) and written.

Threat model: a canary file may come from anyone (a colleague's pull request, a CI artifact).
Its worst content: a clip path that leads out of the file's folder (absolute, ``..``, a
symbolic link out) or to a pipe or device, a field of another type, a number that is not
finite, a key twice, nesting that never ends, thousands of items (each judged twice), a
secret file named as a clip (with its true sha256), and strings meant for a terminal or a
page. Clip paths are relative to the file, name ``.mp4`` files (as ``record`` pairs them;
never a ``.`` or ``..`` part, so one clip has one name) and must stay inside its folder once
every link is followed; only regular files are read, and their bytes are checked against the
recorded sha256 before anything is judged. What the file says of its judge and server is a
label the verdict compares, never a proof: the behaviour is what is checked. Nothing in the
file is run or imported; the judge comes from the command line. The file is written whole or
not at all (``write_json_atomic``), never over a file that is not a canary file, a symbolic
link or a special file (:func:`check_canary_out`); it holds no clip bytes, only paths and
digests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._fields import (
    MAX_NAME,
    MAX_SERVER_TEXT,
    STRING,
    Fields,
    Rule,
    between,
)
from pytest_phyjudge._files import FileProblem, not_a_file, read_json_file, resolve_path
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE, check_axis
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.video import sha256_file

FORMAT = "pytest-phyjudge-canaries"
VERSION = 1
#: The settings recorded (and compared) besides the scoring, which a canary holds both of.
SETTING_NAMES = ("fps", "max_pixels", "max_new_tokens")
#: The libraries whose versions a canary records, where installed.
PACKAGES = ("pytest-phyjudge", "torch", "transformers", "peft", "vllm")
DIGITS = MAX_SCORE - MIN_SCORE + 1
#: Probabilities may sum to a little off 1 (read from top log-probabilities, rounded).
PROBABILITY_SLACK = 1e-3
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IDENTITY_FIELDS = ("kind", "adapter", "revision", "base", "adapter_sha256")
#: The clips ``record`` pairs (``score-dir``'s ``*.mp4``); any other file is no canary clip.
CLIP_SUFFIX = ".mp4"
#: Items a canary file may hold: each is judged twice on every check, so a file of thousands
#: would cost hours of a large judge (a canary set is a few clips on a few axes).
MAX_ITEMS = 1000


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


_FIX = "A canary file is written by 'phyjudge canary record'; record it again, or fix that field"
SHA256: Rule = (
    lambda v: isinstance(v, str) and bool(_SHA256.fullmatch(v)),
    "a sha256 (64 lowercase hex digits)",
)
DIGIT: Rule = (
    lambda v: type(v) is int and MIN_SCORE <= v <= MAX_SCORE,
    f"a digit {MIN_SCORE}-{MAX_SCORE}",
)
EXPECTED: Rule = between(MIN_SCORE, MAX_SCORE)
PROBABILITY: Rule = between(0, 1, "a probability")
FPS: Rule = between(1e-6, 1e6)
COUNT: Rule = (lambda v: type(v) is int and 1 <= v <= 2**31, "a whole number from 1 to 2**31")
#: What a server said of itself, as ``record.server_identity`` writes it: texts, and the
#: judge /v1/models named (an identity's fields).
_SERVER_TEXTS = ("model", "answered_by", "system_fingerprint")
#: A judge's name, revision or base as ``record`` writes it: a hub id or a folder's name.
NAME: Rule = (
    lambda v: isinstance(v, str) and len(v) <= MAX_NAME,
    f"a string of at most {MAX_NAME} characters or null",
)
SERVER_TEXT: Rule = (
    lambda v: isinstance(v, str) and len(v) <= MAX_SERVER_TEXT,
    f"a string of at most {MAX_SERVER_TEXT} characters or null",
)


def _clip_path(fields: Fields, value: Any, where: str) -> str:
    """A clip path as the file may hold it: relative, POSIX, no ``..``, no empty part."""
    text = fields.value(value, where, STRING)
    pure = PurePosixPath(text)
    if (
        not text
        or "\\" in text
        or "\x00" in text
        or pure.is_absolute()
        or any(part in (".", "..", "") for part in text.split("/"))
        or re.match(r"[A-Za-z]:", text)
    ):
        raise fields.fail(
            where,
            f"is {text!r}: a clip path must be relative to the canary file's folder and stay "
            "inside it (no absolute path, no '.' or '..' part)",
        )
    if not text.endswith(CLIP_SUFFIX):
        raise fields.fail(
            where, f"is {text!r}: a canary clip is a {CLIP_SUFFIX} file, as 'record' pairs them"
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
    f = Fields(str(path), _FIX)
    top = ("format", "version", "created", "judge", "settings", "server", "device", "dtype")
    f.exact(data, "the document", (*top, "versions", "items"))
    if data["format"] != FORMAT:
        raise f.fail("format", f"is {data['format']!r}, not {FORMAT!r}")
    if type(data["version"]) is not int or data["version"] != VERSION:
        raise f.fail(
            "version", f"is {data['version']!r}; this version of pytest-phyjudge reads {VERSION}"
        )
    judge = f.exact(data["judge"], "judge", _IDENTITY_FIELDS)
    f.fields(judge, "judge", (NAME[0], "a string"), "kind", "adapter", needed=True)
    f.fields(judge, "judge", NAME, "revision", "base", "adapter_sha256")
    settings = f.exact(data["settings"], "settings", SETTING_NAMES)
    f.value(settings["fps"], "settings.fps", FPS)
    f.fields(settings, "settings", COUNT, "max_pixels", "max_new_tokens", needed=True)
    server = data["server"]
    if server is not None:
        f.exact(server, "server", (), (*_SERVER_TEXTS, "identity"))
        f.fields(server, "server", SERVER_TEXT, *_SERVER_TEXTS)
        if server.get("identity") is not None:
            served = f.exact(server["identity"], "server.identity", (), _IDENTITY_FIELDS)
            f.fields(served, "server.identity", NAME, *_IDENTITY_FIELDS)
    f.fields(data, "", NAME, "created", "device", "dtype")
    versions = f.exact(data["versions"], "versions", (), PACKAGES)
    f.fields(versions, "versions", (NAME[0], "a version (a string)"), *versions, needed=True)
    if not isinstance(data["items"], list) or not data["items"]:
        raise f.fail("items", "is not a list of at least one canary")
    if len(data["items"]) > MAX_ITEMS:
        raise f.fail(
            "items",
            f"holds {len(data['items'])} canaries, more than {MAX_ITEMS} (each is judged twice "
            "on every check); record a few clips ('canary record --limit N')",
        )
    items: list[CanaryItem] = []
    seen: set[tuple[str, str, str]] = set()
    for index, raw in enumerate(data["items"]):
        at = f"items[{index}]"
        keys = ("clip", "clip_sha256", "caption", "axis", "prompt_sha256", "greedy")
        f.exact(raw, at, (*keys, "distribution"))
        axis = f.value(raw["axis"], f"{at}.axis", STRING)
        try:
            check_axis(axis)
        except InputError:
            raise f.fail(f"{at}.axis", f"is {axis!r}, not a metric or law") from None
        greedy = f.exact(raw["greedy"], f"{at}.greedy", ("reply", "digit"))
        dist = f.exact(raw["distribution"], f"{at}.distribution", ("probs", "expected"))
        probs = dist["probs"]
        if probs is not None:
            if not isinstance(probs, list) or len(probs) != DIGITS:
                raise f.fail(f"{at}.distribution.probs", f"is not a list of {DIGITS} numbers")
            for i, p in enumerate(probs):
                f.value(p, f"{at}.distribution.probs[{i}]", PROBABILITY)
            if abs(sum(probs) - 1.0) > PROBABILITY_SLACK:
                raise f.fail(f"{at}.distribution.probs", f"sums to {sum(probs)!r}, not 1")
            probs = tuple(float(p) for p in probs)
        expected = f.value(dist["expected"], f"{at}.distribution.expected", EXPECTED, null=True)
        item = CanaryItem(
            clip=_clip_path(f, raw["clip"], f"{at}.clip"),
            clip_sha256=f.value(raw["clip_sha256"], f"{at}.clip_sha256", SHA256),
            caption=f.value(raw["caption"], f"{at}.caption", STRING),
            axis=axis,
            prompt_sha256=f.value(raw["prompt_sha256"], f"{at}.prompt_sha256", SHA256),
            reading=Reading(
                reply=f.value(greedy["reply"], f"{at}.greedy.reply", STRING, null=True),
                digit=f.value(greedy["digit"], f"{at}.greedy.digit", DIGIT, null=True),
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


def check_canary_out(out: Path) -> None:
    """Refuse an ``--out`` that ``record`` must not replace, before anything is judged: a
    symbolic link (the link is the user's), a pipe, device or folder, a file in a folder
    this user cannot write, a read-only file, or an existing file that is not a canary file
    (a clip, the prompt set, anyone's notes). A canary file there is recorded again: it is
    what ``record`` writes."""
    fix = "Give --out a new path, or the canary file to record again."
    if out.is_symlink():
        raise InputError(f"--out {str(out)!r} is a symbolic link; it is not replaced. {fix}")
    kind = not_a_file(out)
    if kind is not None:
        raise InputError(f"--out {str(out)!r} is {kind}, not a canary file to write. {fix}")
    folder = out.parent if str(out.parent) else Path(".")
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--out {str(out)!r} is in a folder this user cannot write. {fix}")
    if not out.exists():
        return
    if not out.stat().st_mode & 0o222:
        raise InputError(f"--out {str(out)!r} is read-only; it is not replaced. {fix}")
    try:
        data = read_json_file(out)
    except FileProblem:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(
            f"--out {str(out)!r} already exists and is not a canary file; it is not "
            f"overwritten. {fix}"
        )


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
