"""``phyjudge cache``: move recorded judgments, and the judges that made them, between
machines (record on a GPU box, replay in CI).

Threat model: ``import`` reads an export from whoever sent it (checked record by record by
the store, streamed, nothing kept of a refused file) and takes the judges' identities from
its ``judge_record`` lines or the identity files beside it. ``export`` writes FILE and its
identity files: never over the cache's own database files, never into a pipe or device
(checked before opening), never over an existing file without ``--force``, and each through
a temporary file renamed into place, so a symlink is replaced, not followed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import not_a_file, resolve_path
from pytest_phyjudge._words import counted
from pytest_phyjudge.cli.arguments import add_cache_dir
from pytest_phyjudge.cli.exits import EXIT_CONFLICT, EXIT_OK, fail
from pytest_phyjudge.judges.cache.record import JudgeRecord, identity_text, read_identity_file
from pytest_phyjudge.judges.cache.store import JudgmentCache
from pytest_phyjudge.judges.cache.trust import CacheConflict, CacheWarning
from pytest_phyjudge.judges.options import CLI_SURFACE


def add_commands(commands: Any) -> None:
    cache = commands.add_parser("cache", help="move recorded judgments between machines")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write every judgment as JSON lines, and each judge's identity file beside it",
        description="Write the cache's judges and judgments as JSON lines, and beside FILE "
        "one identity file per judge (FILE-stem.identity.json; -<id> added when the cache "
        "holds several judges): give it to pytest --phyjudge-identity (or phyjudge score-dir "
        "--identity) with cache mode only to replay with no model.",
    )
    export.add_argument("file", help="output .jsonl file ('-' for standard output)")
    export.add_argument(
        "--force", action="store_true", help="overwrite FILE and its identity files if they exist"
    )
    importer = actions.add_parser(
        "import",
        help="add the judgments of a .jsonl file",
        description="Add the judgments of an export. Each takes the identity of the judge "
        "recorded with it (the export's judge_record lines, or FILE-stem.identity*.json "
        "beside it), and is refused unless its key, reply and score agree with its content. "
        "A judgment that differs from the one stored under its key is a conflict (exit 6) "
        "unless --replace.",
    )
    importer.add_argument("file", help="a file written by 'phyjudge cache export'")
    importer.add_argument(
        "--replace",
        action="store_true",
        help="take the file's judgment where it differs from the one stored under its key",
    )
    info = actions.add_parser("info", help="where the cache is, what it holds, and whose")
    for sub in (export, importer, info):
        add_cache_dir(sub)
    cache.set_defaults(run=run_cache)


def identity_paths(out: Path, records: list[JudgeRecord]) -> list[tuple[JudgeRecord, Path]]:
    """Where ``export`` writes each judge's identity file, beside the export ``out``."""
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    if len(records) == 1:
        return [(records[0], Path(f"{stem}.identity.json"))]
    return [(record, Path(f"{stem}.identity-{record.id}.json")) for record in records]


def run_cache(args: argparse.Namespace) -> int:
    cache = JudgmentCache(args.cache, surface=CLI_SURFACE)
    try:
        if args.cache_command == "export":
            _export(cache, args.file, force=args.force)
        elif args.cache_command == "import":
            try:
                done = _import(cache, Path(args.file), replace=args.replace)
            except CacheConflict as exc:
                return fail(str(exc), EXIT_CONFLICT)
            replaced = f", {done.replaced} replaced" if done.replaced else ""
            print(
                f"imported {counted(done.added, 'new judgment')} into {_shown(cache.path)} "
                f"({done.read} in {_shown(args.file)}, "
                f"{done.read - done.added - done.replaced} already there{replaced})",
                file=sys.stderr,
            )
        else:
            print(f"{_shown(cache.path)}: {counted(len(cache), 'judgment')}")
            for record in cache.judges():
                print(f"  judge: {terminal_text(record.describe())}")  # a record's claim
    finally:
        cache.close()
    return EXIT_OK


def _shown(path: str | Path) -> str:
    """A path as printed: a control character in its name shown escaped, never sent."""
    return terminal_text(str(path))


def beside(path: Path) -> list[Path]:
    """The identity files ``export`` wrote beside the export ``path`` (those that exist)."""
    stem = path.with_suffix("") if path.suffix == ".jsonl" else path
    found = [Path(f"{stem}.identity.json")]
    found += sorted(stem.parent.glob(f"{_glob_escape(stem.name)}.identity-*.json"))
    return [p for p in found if p.is_file()]


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _identities(path: Path) -> list[JudgeRecord]:
    """The judges of the identity files beside ``path``; one that cannot be read is left out
    with a warning (the export's own judge_record lines may still name the judge)."""
    records = []
    for file in beside(path):
        try:
            records.append(read_identity_file(file))
        except InputError as exc:
            warnings.warn(f"{exc} It is not used for this import.", CacheWarning, stacklevel=2)
    return records


#: The longest line an export holds: one judgment, its prompt and reply included, is a
#: few KB; a "line" past this is not an export (a device, a binary file).
MAX_LINE_BYTES = 16 * 2**20


def _import(cache: JudgmentCache, path: Path, *, replace: bool = False) -> Any:
    """Import an export file: (new, read). A file that is not one is an InputError naming
    it, its line when the problem has one; nothing is imported then."""
    kind = not_a_file(path)
    if kind is not None:  # a pipe blocks and a device never ends: refuse before opening
        raise InputError(f"Cannot import {str(path)!r}: it is {kind}, not an export file.")

    def lines(file: Any) -> Iterator[str]:
        for number, line in enumerate(iter(lambda: file.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(line) > MAX_LINE_BYTES:
                raise InputError(
                    f"{path}:{number}: a line longer than {MAX_LINE_BYTES // 2**20} MiB; this is "
                    "not a file written by 'phyjudge cache export'. Nothing was imported."
                )
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{path}:{number}: not UTF-8 text ({exc.reason}); this is not a file written "
                    "by 'phyjudge cache export'. Nothing was imported."
                ) from None

    try:
        with path.open("rb") as file:
            return cache.import_jsonl(
                lines(file), source=str(path), identities=_identities(path), replace=replace
            )
    except OSError as exc:
        raise InputError(f"Cannot read {str(path)!r} ({exc.strerror or exc}).") from exc


def _export(cache: JudgmentCache, file: str, *, force: bool = False) -> None:
    if file == "-":
        count = cache.export_jsonl(sys.stdout)
        print(f"exported {counted(count, 'judgment')} from {_shown(cache.path)}", file=sys.stderr)
        return
    out = Path(file)
    identities = identity_paths(out, cache.judges())
    for target in [out, *(path for _, path in identities)]:
        _check_target(cache, target, force=force)
    exported: list[int] = []
    try:
        _replace_with(out, lambda text: exported.append(cache.export_jsonl(text)))
        written = []
        for record, path in identities:
            _replace_with(path, lambda text, r=record: text.write(identity_text(r)))
            written.append(path)
    except OSError as exc:
        raise InputError(
            f"Cannot write the export {file!r} ({exc.strerror or exc}); choose a writable path."
        ) from exc
    print(
        f"exported {counted(exported[0], 'judgment')} from {_shown(cache.path)} to {_shown(file)}",
        file=sys.stderr,
    )
    for path in written:
        print(
            f"judge identity: {_shown(path)} (replay with pytest --phyjudge-identity "
            f"{_shown(path)} --phyjudge-cache-mode only, or phyjudge score-dir --identity "
            f"{_shown(path)} --cache-mode only)",
            file=sys.stderr,
        )


def _check_target(cache: JudgmentCache, target: Path, *, force: bool) -> None:
    """Refuse, before anything is opened, a target that is the cache's own file, a pipe or
    a device, or (without ``force``) a file that exists."""
    where = resolve_path(target)
    for own in cache.files():
        same = where == resolve_path(own)
        if not same and own.exists() and target.exists():
            same = os.path.samefile(own, target)
        if same:
            raise InputError(
                f"Cannot export into {str(target)!r}: it is the judgment cache's own file "
                f"({own.name}); writing it would destroy the cache. Choose another path, e.g. "
                "judgments.jsonl."
            )
    kind = not_a_file(target)
    if kind is not None:
        raise InputError(
            f"Cannot export into {str(target)!r}: it is {kind}, not a file. Choose a file path "
            "(or '-' for standard output)."
        )
    if os.path.lexists(target) and not force:
        raise InputError(
            f"Cannot export into {str(target)!r}: it already exists. Pass --force to replace "
            "it, or choose another path."
        )


def _replace_with(target: Path, write: Any) -> None:
    """Write ``target`` through a temporary file beside it, renamed into place: a symlink
    there is replaced, never followed, and a failed write leaves the old file as it was."""
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as text:
            write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
