"""Which judge a server serves, so that cached judgments and reports name the real judge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import JudgeBackendError, JudgeLoadError
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.http import get_json, open_client
from pytest_phyjudge.judges.merge import PROVENANCE_FILE
from pytest_phyjudge.judges.vllm import SERVED_MODEL_NAME

MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class ServedJudge:
    """What one server says it serves: the model's name in requests, the judge, and the
    folder holding the adapter's rubric files when this machine can read it."""

    name: str
    identity: JudgeIdentity
    rubric_dir: Path | None


def identity_from(provenance: Mapping[str, Any], where: str) -> JudgeIdentity:
    """The identity in a provenance record (``where`` names it in errors)."""
    adapter = provenance.get("adapter")
    if not isinstance(adapter, str) or not adapter:
        raise JudgeLoadError(
            f"{where} names no adapter, so the judge behind the server is unknown. Point "
            "--phyjudge-remote-identity at the phyjudge_provenance.json that "
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


def read_provenance(source: str | Path) -> tuple[JudgeIdentity, Path]:
    """The identity recorded by ``phyjudge merge``, from the merged folder or its
    provenance file; also returns the folder (it holds the adapter's rubric files)."""
    path = Path(source)
    file = path / PROVENANCE_FILE if path.is_dir() else path
    try:
        data = read_json_file(file)
    except FileProblem as problem:
        raise JudgeLoadError(
            f"Cannot read the served judge's provenance: {str(file)!r} {problem.reason}. "
            f"Give the merged checkpoint folder, or the {PROVENANCE_FILE} that "
            "'phyjudge merge' wrote into it."
        ) from None
    if not isinstance(data, dict):
        raise JudgeLoadError(f"{str(file)!r} is not a provenance record (a JSON object).")
    return identity_from(data, str(file)), file.parent


def served_judge(models: Any, url: str) -> ServedJudge:
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
        identity = identity_from(entry["phyjudge"], f"{url}/v1/models")
        return ServedJudge(name, identity, Path(root) if root and Path(root).is_dir() else None)
    root = entry.get("root")
    if isinstance(root, str) and (Path(root) / PROVENANCE_FILE).is_file():
        identity, folder = read_provenance(root)
        return ServedJudge(name, identity, folder)
    raise JudgeLoadError(
        f"The server at {url} serves {name!r} but does not say which PhyJudge it is (its "
        f"folder {root!r} is not readable here). Pass --phyjudge-remote-identity with the "
        f"merged checkpoint's {PROVENANCE_FILE}, so that cached judgments and reports name "
        "the judge."
    )


def ask_servers(urls: Sequence[str], *, connect_timeout: float, read_timeout: float) -> ServedJudge:
    """The judge every server at ``urls`` says it serves; JudgeLoadError when none
    answers or they disagree."""
    found: dict[str, ServedJudge] = {}
    errors: list[str] = []
    with open_client(connect_timeout=connect_timeout, read_timeout=read_timeout) as client:
        for url in urls:
            try:
                found[url] = served_judge(
                    get_json(client, url, MODELS_PATH, budget=read_timeout), url
                )
            except JudgeBackendError as exc:
                errors.append(f"{url} ({exc})")
    if not found:
        raise JudgeLoadError(
            f"No judge server answered {MODELS_PATH}: {'; '.join(errors)}. Start the servers "
            "(see 'phyjudge serve-command'), or, to replay cached judgments without them, "
            "pass --phyjudge-remote-identity with the merged checkpoint's provenance."
        )
    if len({served.identity for served in found.values()}) > 1:
        listing = "; ".join(f"{url}: {s.identity.describe()}" for url, s in found.items())
        raise JudgeLoadError(
            f"The judge servers do not serve the same judge ({listing}). Point "
            "--phyjudge-url at replicas of one merged checkpoint."
        )
    return next(iter(found.values()))
