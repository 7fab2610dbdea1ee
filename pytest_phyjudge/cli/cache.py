"""``phyjudge cache``: move recorded judgments, and the judges that made them, between
machines (record on a GPU box, replay in CI)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import not_a_file
from pytest_phyjudge.cli.arguments import add_cache_dir
from pytest_phyjudge.cli.exits import EXIT_OK
from pytest_phyjudge.judges.record import JudgeRecord, write_identity_file


def add_commands(commands: Any) -> None:
    cache = commands.add_parser("cache", help="move recorded judgments between machines")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write every judgment as JSON lines, and each judge's identity file beside it",
        description="Write the cache's judges and judgments as JSON lines, and beside FILE "
        "one identity file per judge (FILE-stem.identity.json; -<id> added when the cache "
        "holds several judges): give it to --phyjudge-identity to replay with no model.",
    )
    export.add_argument("file", help="output .jsonl file ('-' for standard output)")
    importer = actions.add_parser("import", help="add the judgments of a .jsonl file")
    importer.add_argument("file", help="a file written by 'phyjudge cache export'")
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
    from pytest_phyjudge.judges.store import JudgmentCache

    cache = JudgmentCache(args.cache)
    try:
        if args.cache_command == "export":
            _export(cache, args.file)
        elif args.cache_command == "import":
            added, read = _import(cache, Path(args.file))
            print(
                f"imported {added} new judgments into {cache.path} ({read} in {args.file}, "
                f"{read - added} already there)",
                file=sys.stderr,
            )
        else:
            print(f"{cache.path}: {len(cache)} judgments")
            for record in cache.judges():
                print(f"  judge: {terminal_text(record.describe())}")  # a record's claim
    finally:
        cache.close()
    return EXIT_OK


#: The longest line an export holds: one judgment, its prompt and reply included, is a
#: few KB; a "line" past this is not an export (a device, a binary file).
MAX_LINE_BYTES = 16 * 2**20


def _import(cache: Any, path: Path) -> tuple[int, int]:
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
            return cache.import_jsonl(lines(file), source=str(path))
    except OSError as exc:
        raise InputError(f"Cannot read {str(path)!r} ({exc.strerror or exc}).") from exc


def _export(cache: Any, file: str) -> None:
    if file == "-":
        count = cache.export_jsonl(sys.stdout)
        print(f"exported {count} judgments from {cache.path}", file=sys.stderr)
        return
    try:
        with open(file, "w", encoding="utf-8") as out:
            count = cache.export_jsonl(out)
        written = [
            write_identity_file(record, path)
            for record, path in identity_paths(Path(file), cache.judges())
        ]
    except OSError as exc:
        raise InputError(
            f"Cannot write the export {file!r} ({exc.strerror or exc}); choose a writable path."
        ) from exc
    print(f"exported {count} judgments from {cache.path} to {file}", file=sys.stderr)
    for path in written:
        print(f"judge identity: {path} (replay with --phyjudge-identity {path})", file=sys.stderr)
