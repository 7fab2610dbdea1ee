"""What a stored or imported judgment must agree with before it is believed: its key, made
again from its own content, and its reply, parsed again to its score.

A record's claims are checked against what can be recomputed (a key is a hash of the video,
the prompt, the judge, the keyed settings and the parser version; a reply is parsed as the
judge's was); the cache (``store``, ``transfer``, ``cached``) refuses what does not agree.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_phyjudge._exceptions import CacheError, JudgeOutputError, PhyJudgeError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import PARSER_VERSION, answer_prefix, parse_score
from pytest_phyjudge.judges.cache.record import JudgeRecord, judge_material
from pytest_phyjudge.judges.settings import KEYED_SETTINGS  # declared beside the config


class CacheWarning(UserWarning):
    """The cache had a problem it recovered from (a corrupt file moved aside, a bad record
    skipped, a write that failed)."""


class CacheConflict(CacheError):
    """An import would replace stored judgments with different ones."""


def keyed(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that are part of a judgment's key, and only those."""
    return {name: settings.get(name) for name in KEYED_SETTINGS}


def cache_key(
    *,
    video_sha256: str,
    prompt_sha256: str,
    identity: JudgeIdentity,
    settings: Mapping[str, Any],
) -> str:
    """sha256 of the canonical JSON of everything a judgment depends on."""
    return key_maker(identity, settings)(video_sha256, prompt_sha256)


def key_maker(identity: JudgeIdentity, settings: Mapping[str, Any]) -> Callable[[str, str], str]:
    """``cache_key`` for one judge and settings, as a function of (video, prompt) hashes:
    the canonical JSON of the rest is made once (an import keys a million lines)."""
    material = {
        "video": "\0video",
        "prompt": "\0prompt",
        "judge": judge_material(identity),
        "settings": keyed(settings),
        "parser": PARSER_VERSION,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    head, rest = canonical.split('"\\u0000prompt"')
    middle, tail = rest.split('"\\u0000video"')

    def make(video_sha256: str, prompt_sha256: str) -> str:
        text = head + _json_string(prompt_sha256) + middle + _json_string(video_sha256) + tail
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    return make


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without the encoder for the usual hex digest."""
    return f'"{text}"' if text.isascii() and text.isalnum() else json.dumps(text)


def reply_problem(judgment: Judgment) -> str | None:
    """Why ``judgment``'s raw reply does not say its score on its axis, or None when it does.

    A greedy reply is parsed as the judge's reply was; a distribution judgment's reply is
    the answer prefix and the likeliest digit of its probabilities."""
    axis = judgment.key
    if judgment.raw == f'{{"{axis}": {judgment.score}}}':
        return None  # the reply as the judge is asked to write it, saying this score
    try:
        said = parse_score(judgment.raw, axis)
    except JudgeOutputError:
        said = None
    if said is None and judgment.probs is not None:
        likeliest = max(range(5), key=lambda i: judgment.probs[i]) + 1  # type: ignore[index]
        if judgment.raw != f"{answer_prefix(axis)}{judgment.score}":
            return f"its reply {judgment.raw[:80]!r} is not the answer {axis!r} to its score"
        if likeliest != judgment.score:
            return (
                f"its score {judgment.score} is not the likeliest digit of its probabilities "
                f"({likeliest})"
            )
        return None
    if said is None:
        return f"its reply {judgment.raw[:80]!r} gives no score for {axis!r}"
    if said != judgment.score:
        return f"its reply {judgment.raw[:80]!r} says {said}, its score says {judgment.score}"
    return None


def settings_of(text: Any) -> dict[str, Any] | None:
    """Stored settings (JSON text, or NULL) as the keyed settings; a ValueError for others."""
    if text is None:
        return None
    data = json.loads(text) if isinstance(text, str) else text
    if not isinstance(data, dict):
        raise ValueError(f"settings are {type(data).__name__}, not an object")
    return keyed(data)


def key_owner(
    key: str,
    judgment: Mapping[str, Any],
    settings: Mapping[str, Any] | str,
    judges: Sequence[JudgeRecord],
    first: str | None = None,
) -> JudgeRecord | None:
    """The judge among ``judges`` (``first``'s id tried first) whose identity, with the
    judgment's own video and prompt hashes and ``settings`` (or their ``_settings_text``),
    reproduces ``key``."""
    video, prompt = judgment.get("video_sha256"), judgment.get("prompt_sha256")
    if not isinstance(video, str) or not isinstance(prompt, str):
        return None
    ordered = judges
    if first is not None and len(judges) > 1:
        ordered = sorted(judges, key=lambda record: record.id != first)
    used = settings if isinstance(settings, str) else settings_text(settings)
    for record in ordered:
        if _maker(record.identity, used)(video, prompt) == key:
            return record
    return None


def settings_text(settings: Mapping[str, Any]) -> str:
    """The keyed settings as canonical JSON (what the store keeps, and ``_maker``'s key)."""
    try:
        values = tuple(settings.get(name) for name in KEYED_SETTINGS)
        return _settings_text_of(values, tuple(type(value) for value in values))
    except TypeError:  # a value JSON may hold but a tuple cannot hash (a list)
        return json.dumps(keyed(settings), sort_keys=True)


@functools.lru_cache(maxsize=64)
def _settings_text_of(values: tuple[Any, ...], types: tuple[type, ...]) -> str:
    """(``types`` keeps 2 and 2.0, and 1 and True, apart: their JSON differs.)"""
    return json.dumps(dict(zip(KEYED_SETTINGS, values, strict=True)), sort_keys=True)


@functools.lru_cache(maxsize=64)
def identity_dict(identity: JudgeIdentity) -> dict[str, Any]:
    return identity.to_dict()


@functools.lru_cache(maxsize=64)
def _maker(identity: JudgeIdentity, settings: str) -> Callable[[str, str], str]:
    return key_maker(identity, json.loads(settings))


#: Stands for the caption while a prompt is rendered once per judge and axis.
_CAPTION = "\0caption\0"


def prompt_hasher(record: JudgeRecord, axis: str) -> Callable[[str], str | None]:
    """``lambda caption: record.rubric.render(axis, caption).sha256``, rendering the
    template once: the caption is escaped into the JSON text the hash is taken of (the
    same text, character for character). None for an axis the rubric cannot render."""
    try:
        rendered = record.rubric.render(axis, _CAPTION)
    except (PhyJudgeError, KeyError, ValueError, TypeError):
        return lambda caption: None
    text = json.dumps([rendered.key, rendered.system, rendered.user], ensure_ascii=False)
    parts = text.split(json.dumps(_CAPTION, ensure_ascii=False)[1:-1])
    if _CAPTION in rendered.system or len(parts) != rendered.user.count(_CAPTION) + 1:
        return lambda caption: record.rubric.render(axis, caption).sha256  # a rubric of its own

    def sha(caption: str) -> str:
        escaped = json.dumps(caption, ensure_ascii=False)[1:-1]
        return hashlib.sha256(escaped.join(parts).encode("utf-8")).hexdigest()

    return sha
