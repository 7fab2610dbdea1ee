"""Which judge a server serves, so that cached judgments and reports name the real judge.

Threat model: the servers' /v1/models and replies say which model answers (``model``, and
``system_fingerprint`` where a server sends one); a server may swap its model mid-run, or one
replica may serve another. Replicas whose /v1/models disagree are refused at the start, and
every reply is compared (``ModelWatch``) with the run's first, whose model must be the one
asked for: from the first that differs on, every request fails, naming both models and
both servers, so that no judgment of another model is filed under the judge the run was
planned with (in the cache, or in ``scores.json``, whose failed items carry the message).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import JudgeBackendError, JudgeLoadError
from pytest_phyjudge._fields import MAX_NAME, shown
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE, SERVED_MODEL_NAME
from pytest_phyjudge.judges.remote.http import get_json, open_client
from pytest_phyjudge.judges.settings import PYTEST_SURFACE, Surface

MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class ServedJudge:
    """What one server says it serves: the model's name in requests, the judge, and the
    folder holding the adapter's rubric files when this machine can read it."""

    name: str
    identity: JudgeIdentity
    rubric_dir: Path | None


def identity_from(
    provenance: Mapping[str, Any], where: str, surface: Surface = PYTEST_SURFACE
) -> JudgeIdentity:
    """The identity in a provenance record (``where`` names it in errors, in ``surface``'s
    words)."""
    adapter = provenance.get("adapter")
    if not isinstance(adapter, str) or not adapter:
        raise JudgeLoadError(
            f"{where} names no adapter, so the judge behind the server is unknown. Point "
            f"{surface.flag('remote-identity')} at the phyjudge_provenance.json that "
            "'phyjudge merge' wrote into the merged checkpoint."
        )
    for name in ("adapter", "revision", "base", "adapter_sha256"):
        # What the server says of its judge lands in every report: text of a name's length.
        value = provenance.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_NAME):
            raise JudgeLoadError(
                f"{where} gives the judge's {name!r} as {shown(value)}, not a string of at most "
                f"{MAX_NAME} characters, so the judge behind the server is unknown. Point "
                f"{surface.flag('remote-identity')} at the phyjudge_provenance.json that "
                "'phyjudge merge' wrote into the merged checkpoint."
            )
    # A tiny or scripted judge stays marked as such behind a server: its scores mean nothing.
    kind = provenance.get("kind")
    return JudgeIdentity(
        kind=kind if kind in ("tiny", "scripted") else "remote",
        adapter=adapter,
        revision=provenance.get("revision"),
        base=provenance.get("base"),
        adapter_sha256=provenance.get("adapter_sha256"),
    )


def read_provenance(
    source: str | Path, surface: Surface = PYTEST_SURFACE
) -> tuple[JudgeIdentity, Path]:
    """The identity recorded by ``phyjudge merge``, from the merged folder or its
    provenance file; also returns the folder (it holds the adapter's rubric files)."""
    path = Path(source)
    file = path / PROVENANCE_FILE if path.is_dir() else path
    try:
        data = read_json_file(file, unique_keys=True)
    except FileProblem as problem:
        raise JudgeLoadError(
            f"Cannot read the served judge's provenance: {str(file)!r} {problem.reason}. "
            f"Give the merged checkpoint folder, or the {PROVENANCE_FILE} that "
            "'phyjudge merge' wrote into it."
        ) from None
    if not isinstance(data, dict):
        raise JudgeLoadError(f"{str(file)!r} is not a provenance record (a JSON object).")
    return identity_from(data, str(file), surface), file.parent


def _adapter_folder(root: Any) -> Path | None:
    """The folder a server names for its rubric, when this machine sees it and it is an
    adapter snapshot (``adapter_config.json`` in it); else None and the
    bundled rubric. A server's word alone never makes this machine read any folder it names:
    the rubric's text goes back to the server in every prompt."""
    if not isinstance(root, str) or not root or "\0" in root:
        return None
    folder = Path(root)
    config = folder / "adapter_config.json"
    try:
        if folder.is_dir() and config.is_file():
            return folder
    except OSError:
        return None
    return None


def served_judge(models: Any, url: str, surface: Surface = PYTEST_SURFACE) -> ServedJudge:
    """The served judge from a ``/v1/models`` reply: ``phyjudge serve`` includes the
    provenance; for vLLM it is read from the model's folder (``root``) when this machine
    can see that folder."""
    entries = models.get("data") if isinstance(models, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise JudgeLoadError(f"{url}/v1/models lists no model; is this a judge server?")
    entry = entries[0]
    name = str(entry.get("id") or SERVED_MODEL_NAME)
    if isinstance(entry.get("phyjudge"), dict):
        root = entry["phyjudge"].get("rubric_dir")
        identity = identity_from(entry["phyjudge"], f"{url}/v1/models", surface)
        return ServedJudge(name, identity, _adapter_folder(root))
    root = entry.get("root")
    if isinstance(root, str) and (Path(root) / PROVENANCE_FILE).is_file():
        identity, folder = read_provenance(root, surface)
        return ServedJudge(name, identity, folder)
    raise JudgeLoadError(
        f"The server at {url} serves {name!r} but does not say which PhyJudge it is (its "
        f"folder {root!r} is not readable here). Pass {surface.flag('remote-identity')} with the "
        f"merged checkpoint's {PROVENANCE_FILE}, so that cached judgments and reports name "
        "the judge."
    )


def ask_servers(
    urls: Sequence[str],
    *,
    connect_timeout: float,
    read_timeout: float,
    surface: Surface = PYTEST_SURFACE,
) -> ServedJudge:
    """The judge every server at ``urls`` says it serves; JudgeLoadError when none
    answers or they disagree."""
    found: dict[str, ServedJudge] = {}
    errors: list[str] = []
    with open_client(connect_timeout=connect_timeout, read_timeout=read_timeout) as client:
        for url in urls:
            try:
                models = get_json(client, url, MODELS_PATH, budget=read_timeout, surface=surface)
                found[url] = served_judge(models, url, surface)
            except JudgeBackendError as exc:
                errors.append(f"{url} ({exc})")
    if not found:
        raise JudgeLoadError(
            f"No judge server answered {MODELS_PATH}: {'; '.join(errors)}. Start the servers "
            "(see 'phyjudge serve-command'), or, to replay cached judgments without them, "
            f"pass {surface.flag('remote-identity')} with the merged checkpoint's provenance."
        )
    if len({served.identity for served in found.values()}) > 1:
        listing = "; ".join(f"{url}: {s.identity.describe()}" for url, s in found.items())
        raise JudgeLoadError(
            f"The judge servers do not serve the same judge ({listing}). Point "
            f"{surface.flag('url')} at replicas of one merged checkpoint."
        )
    return next(iter(found.values()))


# --------------------------------------------------------------------------- who answers


@dataclass(frozen=True)
class Answerer:
    """Who a reply says answered it: its ``model`` and ``system_fingerprint`` (None when
    not sent), and the server it came from (not compared: replicas must match)."""

    model: Any
    fingerprint: Any
    url: str

    @classmethod
    def of(cls, reply: Any, url: str) -> Answerer:
        if not isinstance(reply, dict):
            return cls(None, None, url)  # no reply to read: first_choice names it
        return cls(reply.get("model"), reply.get("system_fingerprint"), url)

    def same_model(self, other: Answerer) -> bool:
        return (self.model, self.fingerprint) == (other.model, other.fingerprint)

    def describe(self, with_fingerprint: bool) -> str:
        shown = f"model {_shown(self.model)}"
        if with_fingerprint:
            shown += f" (system_fingerprint {_shown(self.fingerprint)})"
        return f"{shown} from {self.url}"


def _shown(value: Any) -> str:
    """A value of a reply, quoted and cut short for a message (``repr`` escapes controls)."""
    return "none" if value is None else repr(value)[:120]


def changed_model_error(
    first: Answerer, now: Answerer, judge: str, surface: Surface = PYTEST_SURFACE
) -> JudgeBackendError:
    """The error of every request from the reply that named another model than the first
    (or, ``first.url`` empty, than the model the run asked for)."""
    fingerprints = first.fingerprint is not None or now.fingerprint is not None
    if first.url:
        what = "The judge changed mid-run"
        before = f"the run's first reply named {first.describe(fingerprints)}"
    else:
        what = "The judge server answers as another model than the one asked for"
        before = f"the run asked for model {_shown(first.model)} (as /v1/models listed it)"
    return JudgeBackendError(
        f"{what}: a reply named {now.describe(fingerprints)}, where {before}. This item and "
        "every later one fail, so that no judgment of another model is reported or cached "
        f"as {judge}. Point {surface.flag('url')} at servers (replicas) that all serve one merged "
        "checkpoint, and run again.",
        urls=tuple(url for url in dict.fromkeys((first.url, now.url)) if url),
    )


class ModelWatch:
    """Which model a run's replies say answered them: the first reply's, which must be the
    model asked for when it names one, and every later reply's, which must be the same.
    From the first that differs on, ``check`` raises for every request (thread-safe)."""

    def __init__(self, asked: str, judge: str, surface: Surface = PYTEST_SURFACE) -> None:
        self.asked = asked
        self.judge = judge
        self.surface = surface
        #: Who answered the run's first reply.
        self.first: Answerer | None = None
        #: Once a reply named another model: the two (the first with no URL: the model asked).
        self.changed: tuple[Answerer, Answerer] | None = None
        #: Once a server's /v1/models named another judge than at the start: its error.
        self.served_change: JudgeBackendError | None = None
        self._lock = threading.Lock()

    def served_changed(self, error: JudgeBackendError) -> None:
        """A server now lists another judge: this and every later request fail with
        ``error`` (the first such error is kept)."""
        with self._lock:
            if self.served_change is None:
                self.served_change = error

    def check(self, now: Answerer | None) -> None:
        """Raise once any reply of the run has named another model than the first (``now``:
        the reply just read, which becomes the first when there is none yet); a first reply
        that names another model than the one asked for is a change too."""
        with self._lock:
            if self.served_change is not None:
                raise self.served_change
            if self.changed is None and now is not None:
                if self.first is None and isinstance(now.model, str) and now.model != self.asked:
                    self.changed = (Answerer(self.asked, None, ""), now)
                elif self.first is None:
                    self.first = now
                elif not now.same_model(self.first):
                    self.changed = (self.first, now)
            if self.changed is not None:
                raise changed_model_error(*self.changed, self.judge, self.surface)

    def note(self) -> str:
        """The end of the judge's summary line: what changed, or nothing."""
        if self.served_change is not None:
            return f"; THE JUDGE CHANGED MID-RUN: {self.served_change.args[0]}"
        if self.changed is None:
            return ""
        first, now = self.changed
        fingerprints = first.fingerprint is not None or now.fingerprint is not None
        before = first.describe(fingerprints) if first.url else f"asked for {first.model!r}"
        return (
            f"; THE JUDGE CHANGED MID-RUN: {before}, then {now.describe(fingerprints)} "
            "(the items from then on failed)"
        )


def served_change(
    before: ServedJudge, models: Any, url: str, surface: Surface = PYTEST_SURFACE
) -> JudgeBackendError | None:
    """The error when ``url``'s ``/v1/models`` reply (asked again while the run goes on)
    lists another judge or model name than ``before``, the one the run was planned with;
    None when it is the same. Replies name only the model; the identity behind the name
    (adapter, its sha256) is what /v1/models says, so it is asked again between cases."""
    try:
        now: ServedJudge | str = served_judge(models, url, surface)
    except JudgeLoadError as exc:
        now = str(exc)
    if isinstance(now, ServedJudge) and (now.name, now.identity) == (
        before.name,
        before.identity,
    ):
        return None
    said = (
        f"now lists model {_shown(now.name)} as {now.identity.describe()}"
        if isinstance(now, ServedJudge)
        else f"no longer says which judge it serves ({now})"
    )
    return JudgeBackendError(
        f"The judge changed mid-run: the server at {url} {said}, where the run started with "
        f"model {_shown(before.name)} as {before.identity.describe()}. This item and every "
        "later one fail, so that no judgment of another judge is reported or cached as the "
        f"first. Point {surface.flag('url')} at servers that keep serving one merged "
        "checkpoint, and run again.",
        urls=(url,),
    )
