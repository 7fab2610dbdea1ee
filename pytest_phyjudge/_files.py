"""Reading the text and JSON files users hand us (suites, prompt sets, reports, baselines,
identity files, cache exports) with one set of guards: a pipe, a device or a symlink loop
is named for what it is, a file is read up to a cap, and every way JSON can fail to parse
(bad syntax, nesting too deep, a number too long) becomes one sentence. And writing the JSON
files users keep (reports, baselines): whole or not at all (:func:`write_json_atomic`)."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
from array import array
from collections.abc import Iterable
from itertools import accumulate
from pathlib import Path
from typing import Any

#: The largest file read whole; real suites, reports and baselines are at most a few MB.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The deepest nesting of arrays and objects read from any JSON, a file's or a server's: real
#: documents nest a handful of levels; a deeper one is refused before it is parsed.
MAX_JSON_DEPTH = 100
#: A JSON string, escapes included (the unrolled loop keeps the regex linear).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Everything but brackets, once strings are gone.
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
#: An array or object with no other inside: the innermost, whose removal takes one level off.
_LEAVES = re.compile(r"\[\]|\{\}")
#: Opening brackets as +1 and closing ones as -1 (signed bytes), for ``accumulate``.
_BRACKET_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})
#: How messages name a path whose symbolic links lead back to themselves.
LOOP = "a loop of symbolic links that never reaches a file"


class FileProblem(Exception):
    """Why a file could not be read or parsed, as the end of a sentence that starts with
    the file's name ("... is not valid JSON"); ``line`` when the problem has one."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def resolve_path(path: Path) -> Path:
    """``path.resolve()``, or the plain absolute path when it cannot be resolved (a loop of
    symbolic links): the check that later reads the file names the problem."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop
        return Path(os.path.abspath(path))


def lies_within(path: str | Path, roots: Iterable[str | Path]) -> bool:
    """Whether ``path``, its links followed, lies inside one of ``roots`` (links followed
    too): the one containment check of files named by an input."""
    real = Path(os.path.realpath(path))
    return any(Path(os.path.realpath(root)) in real.parents for root in roots)


def not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file one can read (``a folder``, ``a
    device``, ...), or None for a regular file; the caller reports a missing file its own way."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return LOOP
        return None  # unreadable: opening it says why
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if not stat.S_ISREG(mode):
        return "a socket or other special file"
    return None


def read_text_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path`` (newlines made ``\\n``); FileProblem for a missing,
    special, unreadable, oversized or non-UTF-8 file."""
    kind = not_a_file(path)
    if kind is not None:
        # Checked before opening: a pipe blocks on open, a device may never end.
        raise FileProblem(f"is {kind}, not a file")
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise FileProblem("does not exist") from None
    except OSError as exc:
        raise FileProblem(f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise FileProblem(f"is larger than {limit // 2**20} MiB, more than such a file holds")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def json_depth(text: str, cap: int = MAX_JSON_DEPTH) -> int:
    """How deeply the arrays and objects of the JSON ``text`` nest (brackets inside strings
    do not count), counted only when it could pass ``cap``: the regexes and ``accumulate``
    run in C, so a 16 MB reply is scanned in a fraction of a second, with no recursion."""
    if text.count("[") + text.count("{") <= cap:
        return 0  # cannot be deeper than cap: most documents end here
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    # The deepest point lies in an innermost pair: dropping those (in C) leaves one level
    # less to count, and usually a far shorter string.
    inner = _LEAVES.sub("", brackets)
    steps = array("b", inner.translate(_BRACKET_STEPS).encode("latin-1"))
    return max(accumulate(steps, initial=0)) + (len(inner) < len(brackets))


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different (``json`` would keep the last of two)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return found


def parse_json(text: str, *, unique_keys: bool = False) -> Any:
    """``json.loads``, each way it can fail one FileProblem. Nesting past MAX_JSON_DEPTH is
    refused before parsing (the parser's own recursion limit depends on the caller's stack);
    with ``unique_keys``, an object that holds a key twice is refused too (which of the two
    would count is not for us to say)."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise FileProblem(f"is nested too deeply to read (more than {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys if unique_keys else None)
    except _RepeatedKey as exc:
        key = repr(str(exc))
        raise FileProblem(
            f"holds the key {key if len(key) < 60 else key[:56] + '...'} twice in one "
            "object, and only one of them can count"
        ) from None
    except json.JSONDecodeError as exc:
        raise FileProblem(
            f"is not valid JSON ({exc.msg}, column {exc.colno})", exc.lineno
        ) from None
    except RecursionError:
        raise FileProblem(
            f"is nested too deeply to read (more than {MAX_JSON_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise FileProblem(f"holds a number too long to read ({exc})") from None


def read_json_file(path: Path, *, unique_keys: bool = False) -> Any:
    """The JSON value in ``path``; FileProblem for anything that keeps it from being read."""
    return parse_json(read_text_file(path), unique_keys=unique_keys)


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty file beside ``target`` opened for writing. Made with mode 0666 so the
    umask decides its permissions, as for any file the user writes (``mkstemp`` would make
    it 0600, unreadable to the rest of a team sharing the report or the baseline)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def check_replaceable(target: Path) -> None:
    """An OSError naming ``target`` when it is a device, a pipe, a socket or a folder: a
    rename over it would replace the node itself (run as root, a report named /dev/full
    took the device's place). A regular file, a link (replaced, never followed) or nothing
    is fine."""
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        return  # nothing there (or unreadable: the write itself says why)
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return
    kind = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
    raise OSError(
        errno.EEXIST, f"it is {kind}, not a file; nothing is written in its place", str(target)
    )


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it over: a reader never
    sees half a report, and an interrupted write leaves the previous one in place."""
    target = Path(path)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
