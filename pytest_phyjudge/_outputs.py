"""Output folders that own only what they create: every writer of a report folder (the HTML
report, its previews and sheets, the contact sheets beside scores.json) goes through here.

Threat model: the folder is named by the user (or by a CI script), and may already hold the
user's own files, symlinks into other folders, FIFOs or devices, or a manifest planted by
someone else; the run's inputs (scores.json, sheets, clips) may come from anyone. Worst
case: a report run deletes or overwrites a user's file, writes through a symlink out of the
folder, blocks on a FIFO, or leaves a half-written file. So a folder keeps a manifest
(``.phyjudge-manifest.json``) of the files it wrote, with their sha256; a file is replaced
or deleted only when the manifest lists it and its content is still what was written; no
path component inside the folder may be a symlink or a special file (checked with
``lstat`` before any open); and a folder that holds anything else is refused, with a
message naming what it holds (the report never moves to another folder on its own).
Files are written to a fresh temporary file (``O_EXCL``, never following a link) and
renamed over the target, so a reader never sees half a file. Not covered: another process
swapping folder entries for symlinks while the run writes (a race with someone who can
already write into the folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import check_replaceable

MANIFEST = ".phyjudge-manifest.json"
FORMAT = "pytest-phyjudge-outputs"
VERSION = 1
#: A manifest larger than this was not written by us (100,000 entries are ~10 MB).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: The suffix of our temporary files: leftovers of an interrupted run are ours to remove.
PARTIAL_SUFFIX = ".phyjudge-partial"
#: How many foreign entries a refusal names.
SHOWN = 3
#: What :func:`create_beside` names them: ``.<name>.<8 hex digits>.phyjudge-partial``.
_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{8}" + re.escape(PARTIAL_SUFFIX) + r"$")
#: The names the writers of these folders make: the HTML report's page, assets, previews and
#: sheets, and the contact sheets beside scores.json (``<case>-<key>.png``). The manifest is a
#: file in a folder anyone may have written to, so it is believed only for these names and
#: only for files that are what the name says (:func:`looks_ours`): a manifest that lists a
#: user's ``notes.txt`` or ``index.html`` never makes the run replace or delete it.
OUR_NAMES = re.compile(
    r"index\.html|assets/(?:report|rating)\.(?:css|js)|(?:sheets/)?[\w.-]*-[0-9a-f]{16}\.png"
    r"|sheets/[0-9a-f]{24}\.png|media/[0-9a-f]{20}-v\d+\.(?:mp4|jpg)"
)
#: What each kind of file the writers make begins with (or, for text, holds near its start).
_SIGNS: dict[str, Callable[[bytes], bool]] = {
    ".png": lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    ".jpg": lambda head: head.startswith(b"\xff\xd8\xff"),
    ".mp4": lambda head: head[4:8] == b"ftyp",
    ".html": lambda page: (
        page[:15].lower() == b"<!doctype html>" and b"pytest-phyjudge HTML report" in page
    ),
    ".css": lambda head: b"HTML report" in head,
    ".js": lambda head: b"HTML report" in head,
}


#: What a name may keep of a text it is made from: the rest becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_part(text: str, limit: int = 80) -> str:
    """``text`` made a readable part of a file name on every filesystem: only letters,
    digits, ``_``, ``.`` and ``-``, at most ``limit`` of them (its end kept), never empty,
    never dots alone. Texts that differ may give one part: callers add a hash of the text."""
    part = _UNSAFE.sub("_", text).strip("_")[-limit:]
    return part if part.strip(".") else "_"


def create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``target``, opened for writing: ``O_EXCL`` (so
    never an existing file, nor through a link), mode 0666 so the umask decides who may
    read it, as for any file the user writes; named so a leftover is known to be ours."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file renamed over it: a link at
    ``target`` is replaced, never followed, and a reader never sees half a file; a device,
    pipe or folder there is an OSError, never replaced."""
    check_replaceable(target)
    fd, temp = create_beside(target)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _inside(root: Path, paths: Iterable[Path]) -> frozenset[str]:
    """The names inside ``root`` of those of ``paths`` that lie in it."""
    names = set()
    for path in paths:
        try:
            names.add(Path(os.path.realpath(path)).relative_to(root).as_posix())
        except ValueError:
            continue
    return frozenset(names - {"."})


def writes_over(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` is the folder ``root`` itself, its manifest, or a file its writers
    make there (:data:`OUR_NAMES`): another output named so would be lost to the folder's."""
    try:
        name = Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).as_posix()
    except ValueError:
        return False
    return name in (".", MANIFEST) or OUR_NAMES.fullmatch(name) is not None


class FolderNotOwned(InputError):
    """An output folder (or a path in it) that pytest-phyjudge may not write into."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file" if stat.S_ISREG(mode) else "a special file"


def check_name(name: str) -> PurePosixPath:
    """``name`` as a relative path inside a folder; ValueError for anything that could leave
    it (absolute, ``..``, a backslash, a NUL, an empty part)."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise ValueError(f"{name!r} is not a relative file name")
    path = PurePosixPath(name)
    if path.is_absolute() or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"{name!r} is not a relative file name inside the folder")
    return path


def looks_ours(root: Path, name: str) -> bool:
    """Whether the regular file ``name`` in ``root`` could be one the writers made: a name
    of :data:`OUR_NAMES` and content of its kind (an index.html of the report's, a PNG, ...).
    Nothing is followed: a link or a special file is never ours."""
    if not OUR_NAMES.fullmatch(name):
        return False
    try:  # never opened unless a regular file: opening a device can do things
        if not stat.S_ISREG(os.lstat(root / name).st_mode):
            return False
    except OSError:
        return False
    sign = _SIGNS.get(PurePosixPath(name).suffix)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(root / name, flags)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        # The page's own words stand in its footer, after the cases: read it whole.
        head = file.read() if name == "index.html" else file.read(512)
    return sign is not None and sign(head)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(root: Path, what: str) -> dict[str, str | None]:
    """The files the manifest lists; FolderNotOwned when it is not one we wrote."""
    path = root / MANIFEST
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {}
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = f"is {_kind(info.st_mode)}"
    elif info.st_size > MAX_MANIFEST_BYTES:
        problem = "is too large"
    else:
        try:
            data = json.loads(path.read_bytes())
            files = data["files"] if data.get("format") == FORMAT else None
            if not isinstance(files, dict):
                raise ValueError("no files")
            for name, digest in files.items():
                check_name(name)
                if digest is not None and not (
                    isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)
                ):
                    raise ValueError(f"bad sha256 for {name!r}")
            return dict(files)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OSError):
            problem = "is not one pytest-phyjudge wrote"
    raise FolderNotOwned(
        f"The {what} {str(root)!r} has a manifest ({MANIFEST}) that {problem}, so what the "
        "folder holds cannot be told apart from your own files. Choose a new folder, or "
        "remove that folder (or the manifest) yourself."
    )


@contextlib.contextmanager
def locked_folder(root: Path) -> Iterator[None]:
    """The folder locked against the other processes of the run (pytest-xdist workers); a
    no-op where there is no ``fcntl`` (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one process writes at a time there
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _scan(
    root: Path, manifest: dict[str, str | None], leave: frozenset[str], limit: int = 100_000
) -> list[str]:
    """Entries under ``root`` that are not ours (up to :data:`SHOWN`), each as
    ``name (what it is)``; nothing is followed or opened. Names in ``leave`` (the run's
    other outputs) are skipped, and never touched."""
    found: list[str] = []
    pending = [(root, "")]
    seen = 0
    while pending and len(found) < SHOWN and seen < limit:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                seen += 1
                name = prefix + entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if name in leave:
                    continue
                if stat.S_ISDIR(mode):
                    pending.append((Path(entry.path), name + "/"))
                elif stat.S_ISREG(mode) and (
                    (name in manifest and looks_ours(root, name))
                    or name == MANIFEST
                    or _PARTIAL.match(entry.name)
                ):
                    continue
                else:
                    found.append(name if stat.S_ISREG(mode) else f"{name} ({_kind(mode)})")
                if len(found) >= SHOWN:
                    break
    return found


class OwnedFolder:
    """A folder this run writes into, with its manifest: :meth:`open` checks it, each
    :meth:`target` / :meth:`writing` checks and claims one file, :meth:`finish` removes the
    files of the manifest that this run did not write again, and records the rest."""

    def __init__(self, root: Path, manifest: dict[str, str | None], what: str) -> None:
        self.root = root
        self.what = what
        self.manifest = manifest
        #: What this process wrote (or kept) in this run.
        self.written: set[str] = set()

    @classmethod
    def open(
        cls, path: str | Path, *, what: str = "report folder", leave: Iterable[Path] = ()
    ) -> OwnedFolder:
        """The folder at ``path`` (made when missing), refused unless it is empty or holds
        only files of its manifest, and the paths in ``leave`` (the run's own other outputs:
        its scores.json and sheets may sit in the HTML folder; they are left as they are)."""
        given = Path(path)
        try:
            info = os.stat(given)
        except FileNotFoundError:
            given.mkdir(parents=True, exist_ok=True)
            info = os.stat(given)
        if not stat.S_ISDIR(info.st_mode):
            raise FolderNotOwned(
                f"The {what} {str(given)!r} is {_kind(info.st_mode)}, not a folder. Name a "
                "folder (a new one is made)."
            )
        # Links above and at the folder are the user's own choice of place; below it, none.
        root = given.resolve()
        manifest = _read_manifest(root, what)
        foreign = _scan(root, manifest, _inside(root, leave))
        if foreign:
            more = ", ..." if len(foreign) >= SHOWN else ""
            raise FolderNotOwned(
                f"The {what} {str(given)!r} holds files that pytest-phyjudge did not write "
                f"({', '.join(foreign)}{more}). It writes only into a new or empty folder, or "
                "one it wrote before, and never deletes or overwrites what it did not write. "
                f"Choose another folder (e.g. {str(given / 'phyjudge')!r}), or move those "
                "files away."
            )
        return cls(root, manifest, what)

    # -- what is ours

    def owns(self, name: str) -> bool:
        """Whether ``name`` is a regular file this folder wrote and nobody changed since."""
        if name in self.written:
            return self._regular(name)
        if name not in self.manifest:
            return False
        return self.owns_on_disk(name, self.manifest[name])

    def _regular(self, name: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self.root / name).st_mode)
        except OSError:
            return False

    def name_of(self, path: str | Path) -> str | None:
        """``path``'s name in the folder when it is a file of the folder's own, else None."""
        try:
            relative = Path(os.path.realpath(path)).relative_to(self.root).as_posix()
        except ValueError:
            return None
        try:
            check_name(relative)
        except ValueError:
            return None
        return relative if self.owns(relative) else None

    # -- writing

    def _parent(self, name: str) -> Path:
        """The folder ``name`` goes in, made as needed: every part a real folder, no link."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root
        for part in check_name(name).parts[:-1]:
            folder = folder / part
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    folder.mkdir()
                mode = os.lstat(folder).st_mode
            if not stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
                raise FolderNotOwned(
                    f"{str(folder)!r} in the {self.what} is {_kind(mode)}, not a folder "
                    "pytest-phyjudge made: it never writes through it. Remove it."
                )
        return folder

    def target(self, name: str) -> Path:
        """The path to write ``name`` at, after checking that it is absent or ours, and
        claimed in the manifest (before it exists, so an interrupted run leaves no file
        the next run would call foreign). Checked against the manifest on disk, under the
        folder's lock: another process of the run (an xdist worker) may have claimed it."""
        parent = self._parent(name)
        path = parent / PurePosixPath(name).name
        with locked_folder(self.root):
            self.manifest = _read_manifest(self.root, self.what)
            try:
                mode: int | None = os.lstat(path).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None and not (stat.S_ISREG(mode) and self.owns(name)):
                what = "a file it did not write" if stat.S_ISREG(mode) else _kind(mode)
                raise FolderNotOwned(
                    f"{str(path)!r} in the {self.what} is {what}: pytest-phyjudge never "
                    "overwrites it. Move it away, or choose another folder."
                )
            if name not in self.manifest:
                self.manifest[name] = None
                self._save(self.manifest)
        self.written.add(name)
        return path

    @classmethod
    def attach(cls, path: str | Path, *, what: str = "report folder") -> OwnedFolder:
        """The folder at ``path``, already checked by :meth:`open` in another process of the
        run (the xdist controller): made when missing, its manifest read, not scanned again
        (the run's other processes are writing into it). Every write is still checked."""
        given = Path(path)
        if not given.exists():  # made by the first write: a run that writes nothing, nothing
            return cls(Path(os.path.realpath(given)), {}, what)
        root = given.resolve()
        return cls(root, _read_manifest(root, what), what)

    @classmethod
    def check(
        cls, path: str | Path, *, what: str = "report folder", leave: Iterable[Path] = ()
    ) -> None:
        """Refuse now what :meth:`open` would refuse later, making nothing: a missing folder
        is fine, and so is one that cannot be made (the write says why, at the end)."""
        given = Path(path)
        if given.exists() or given.is_symlink():
            cls.open(given, what=what, leave=leave)

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """A fresh temporary path beside ``name`` to write to; renamed over ``name`` when the
        block ends without an error, removed when it raises."""
        target = self.target(name)
        fd, temp = create_beside(target)
        os.close(fd)
        try:
            yield temp
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def write_bytes(self, name: str, data: bytes) -> Path:
        with self.writing(name) as temp:
            temp.write_bytes(data)
        return self.root / name

    def keep(self, name: str) -> None:
        """Count an existing file of ours as written by this run (it is not pruned)."""
        self.written.add(name)

    def _save(self, files: dict[str, str | None]) -> None:
        data = {"format": FORMAT, "version": VERSION, "files": dict(sorted(files.items()))}
        replace_file(self.root / MANIFEST, json.dumps(data, indent=1).encode("utf-8"))

    def finish(self, keep: set[str] | None = None) -> None:
        """Delete the manifest's files that this run did not write or keep (ours only,
        unchanged only), leftovers of interrupted writes, and record the sha256 of the rest.
        ``keep``: names another process of the run wrote (xdist workers' sheets)."""
        keep = self.written | (keep or set())
        with locked_folder(self.root):
            files = _read_manifest(self.root, self.what)
            files.update({name: None for name in self.written if name not in files})
            for name in sorted(files):
                if name in keep and self._regular(name):
                    files[name] = sha256_of(self.root / name)
                    continue
                if name not in keep and self.owns_on_disk(name, files[name]):
                    (self.root / name).unlink()
                del files[name]  # pruned, missing, or no longer ours: not listed any more
            self._save(files)
            self.manifest = files
        self._sweep_partials()

    def owns_on_disk(self, name: str, digest: str | None) -> bool:
        """Whether the manifest's ``name`` (with its recorded ``digest``) is still ours: a
        regular file of a name and kind the writers make, unchanged since."""
        if not looks_ours(self.root, name):
            return False
        return digest is None or sha256_of(self.root / name) == digest

    def _sweep_partials(self) -> None:
        pending = [self.root]
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False) and _PARTIAL.match(entry.name):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
