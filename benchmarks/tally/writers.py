"""Every file and stream the project writes, attacked from outside (round 5): report folders
whose manifest was forged to claim a user's file or to point out of the folder, a file of
the folder swapped for a symlink between runs, outputs named so that one lands on another,
judge-server credentials (``http://user:pass@host``) and secret files that must reach no
artifact and no printed line, generator names made of clip file names in ``score-dir``
(control characters, ``..``, names alike but for case or after sanitising, names too long
for a file), charts aimed at symlinks, pipes and folders, and paths printed by ``cache``.

Clean is judged on the outcome: every file of the user's is intact, no secret's bytes are
printed or in any file the run wrote, no raw terminal control reaches the output, every
generator's results are in a file of their own with a plain name, and two outputs never
share one file. A refusal naming the thing is as clean as a safe success.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from tally import kit
from tally.markdown import SUMMARY_JUDGES
from tally.model import NotClean, Probe, expect
from tally.probes import cli

FORGED = "writers: forged manifests"
ALIKE = "writers: outputs named alike"
SECRETS = "writers: credentials and secrets"
GENERATORS = "writers: score-dir generator names"
CHARTS = "writers: chart targets"
PRINTED = "writers: printed paths"
REFS = "writers: Markdown issue references"
ANY = expect("returned", "error")
QUICK = 20.0
PASSWORD = "S3CRET-PW-writers-9d2e"
MANIFEST = ".phyjudge-manifest.json"


# --------------------------------------------------------------------------- forged manifests


def _site(folder: Path) -> tuple[Path, Path]:
    """scores.json and a report folder written from it once (a manifest of ours)."""
    scores = kit.write_scores(folder)
    cli("report", str(scores), "--html", str(folder / "site"))(folder)
    return scores, folder / "site"


def _forge(site: Path, files: dict[str, str | None]) -> None:
    manifest = json.loads((site / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"].update(files)
    (site / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def _rerun(prepare: Callable[[Path, Path], list[Path]]) -> Probe:
    """The report written twice into one folder; between the runs ``prepare(folder, site)``
    plants what it returns (the user's files, to be kept intact)."""
    state: dict[str, Any] = {}

    def run(folder: Path) -> str:
        scores, site = _site(folder)
        state["before"] = kit.snapshot(*prepare(folder, site))
        return cli("report", str(scores), "--html", str(site))(folder)

    def check(folder: Path, text: str) -> str | None:
        return kit.changed(state["before"])

    return run, check  # type: ignore[return-value]


def _claimed(name: str, data: bytes, digest: str) -> Callable[[Path, Path], list[Path]]:
    """The user's ``name`` in the folder, listed by a forged manifest with ``digest``
    (``none``, ``sha256``: its real one)."""

    def prepare(folder: Path, site: Path) -> list[Path]:
        user = site / name
        user.parent.mkdir(parents=True, exist_ok=True)
        user.write_bytes(data)
        _forge(site, {name: None if digest == "none" else hashlib.sha256(data).hexdigest()})
        return [user]

    return prepare


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


CLAIMED: dict[str, tuple[str, bytes | Callable[[], bytes]]] = {
    "notes": ("notes.txt", b"the user's notes\n"),
    "index": ("index.html", b"<!doctype html><p>the user's own page</p>\n"),
    "css": ("assets/report.css", b"body { color: teal }\n"),
    "js": ("assets/report.js", b"console.log('the user's');\n"),
    "photo_png": ("photo.png", _png_bytes),
    "sheet_named_text": ("sheets/talk-0123456789abcdef.png", b"not a PNG\n"),
    "preview_named_text": ("media/0123456789abcdef0123-v1.mp4", b"not a clip\n"),
}


def _outside(rel: str, listed: Callable[[Path, Path], str]) -> Callable[[Path, Path], list[Path]]:
    """A user's file outside the folder (at ``rel`` of the probe's folder) that the forged
    manifest lists as ``listed(folder, site)``."""

    def prepare(folder: Path, site: Path) -> list[Path]:
        (user,) = kit.user_files(folder, rel)
        _forge(site, {listed(folder, site): None})
        return [user]

    return prepare


def _linked_subfolder(folder: Path, site: Path) -> list[Path]:
    made = kit.user_files(folder, "elsewhere/keep.txt")
    (site / "linked").symlink_to(folder / "elsewhere")
    _forge(site, {"linked/keep.txt": None})
    return made


def _index_swapped_for_link(folder: Path, site: Path) -> list[Path]:
    (page,) = kit.user_files(folder, "mine/page.html")
    (site / "index.html").unlink()
    (site / "index.html").symlink_to(page)
    return [page]


def _asset_swapped_for_hardlink(folder: Path, site: Path) -> list[Path]:
    (mine,) = kit.user_files(folder, "mine/style.css")
    (site / "assets" / "report.css").unlink()
    os.link(mine, site / "assets" / "report.css")
    return [mine]


def _manifest_is_a_link(folder: Path, site: Path) -> list[Path]:
    made = kit.user_files(site, "notes.txt")
    other = folder / "other-manifest.json"
    files = {"notes.txt": hashlib.sha256(made[0].read_bytes()).hexdigest()}
    forged = {"format": "pytest-phyjudge-outputs", "version": 1, "files": files}
    other.write_text(json.dumps(forged))
    (site / MANIFEST).unlink()
    (site / MANIFEST).symlink_to(other)
    return made


def _manifest_lists_itself(folder: Path, site: Path) -> list[Path]:
    made = kit.user_files(site, "README.md")
    _forge(site, {MANIFEST: None, "README.md": None})
    return made


def forged_manifests() -> Iterator[Probe]:
    for label, (name, data) in CLAIMED.items():
        for digest in ("none", "sha256"):
            content = data() if callable(data) else data
            run, check = _rerun(_claimed(name, content, digest))  # type: ignore[misc]
            yield Probe(FORGED, f"manifest_claims_{label}_{digest}", run, ANY, check, QUICK)
    others: dict[str, Callable[[Path, Path], list[Path]]] = {
        "dotdot": _outside("outside.txt", lambda f, s: "../outside.txt"),
        "absolute": _outside("outside.txt", lambda f, s: str(f / "outside.txt")),
        "inner_dotdot": _outside("outside.txt", lambda f, s: "assets/../../outside.txt"),
        "backslash": _outside("outside.txt", lambda f, s: "..\\outside.txt"),
        "linked_subfolder": _linked_subfolder,
        "index_swapped_for_symlink": _index_swapped_for_link,
        "asset_swapped_for_hardlink": _asset_swapped_for_hardlink,
        "manifest_is_a_symlink": _manifest_is_a_link,
        "manifest_lists_itself": _manifest_lists_itself,
        "user_file_named_like_a_leftover": lambda f, site: kit.user_files(
            site, ".diary.phyjudge-partial"
        ),
        "user_file_in_media_named_like_a_leftover": lambda f, site: kit.user_files(
            site, "media/.talk.mp4.phyjudge-partial"
        ),
    }
    for label, prepare in others.items():
        run, check = _rerun(prepare)  # type: ignore[misc]
        yield Probe(FORGED, f"manifest_{label}", run, ANY, check, QUICK)


# --------------------------------------------------------------------------- outputs named alike


def _alike(report: str, html: str = "site") -> Probe:
    """pytest with ``--phyjudge-report REPORT --phyjudge-html HTML``: either refused before
    judging, or both outputs whole (scores.json a report, index.html a page)."""

    def run(folder: Path) -> str:
        kit.suite(folder)
        args = ("--phyjudge-report", report, "--phyjudge-html", html)
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", *args)
        written = folder / report
        if written.is_file():
            page = folder / html / "index.html"
            if not page.is_file() or not page.read_bytes().lower().startswith(b"<!doctype html"):
                raise NotClean("the HTML report was lost to scores.json (one file for both)")
            try:
                json.loads(written.read_text(encoding="utf-8"))["results"]
            except (ValueError, KeyError, TypeError):
                raise NotClean("scores.json was lost to the HTML report") from None
        return f"exit {code}\n{out}"

    return Probe(ALIKE, f"report_at_{report.replace('/', '_')}", run, ANY, None, 40.0)


def outputs_alike() -> Iterator[Probe]:
    for report in (
        "site/.phyjudge-manifest.json",
        "site/index.html",
        "site/assets/report.css",
        "site",
        "site/scores.json",
    ):
        yield _alike(report)


# --------------------------------------------------------------------------- credentials


def _no_secret(token: str) -> Callable[[Path, str], str | None]:
    def check(folder: Path, text: str) -> str | None:
        return kit.leak(token, text, folder)

    return check


def _pytest_secret(args: Callable[[Path], list[str]], env: dict[str, str] | None = None) -> Any:
    """A pytest run (report, HTML and CI summary written) whose ``args(folder)`` carry the
    password; it must be in no printed line and no file under the probe's folder."""

    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        summary = folder / "summary.md"
        summary.write_text("", encoding="utf-8")
        outputs = ("--phyjudge-report", "out/scores.json", "--phyjudge-html", "site")
        timing = ("--phyjudge-retries", "0", "--phyjudge-timeout", "2")
        code, out = kit.run_pytest(
            folder,
            *args(folder),
            *outputs,
            *timing,
            env={"GITHUB_STEP_SUMMARY": str(summary), **(env or {})},
        )
        return f"exit {code}\n{out}\n{summary.read_text(encoding='utf-8')}"

    return run


def _written(token: str) -> Callable[[Path, str], str | None]:
    """The token in no printed line, CI summary (in the text) or file the run wrote."""

    def check(folder: Path, text: str) -> str | None:
        return kit.leak(token, text, folder / "out", folder / "site")

    return check


def _ini_url(folder: Path) -> list[str]:
    (folder / "pytest.ini").write_text(
        f"[pytest]\nphyjudge_url = http://alice:{PASSWORD}@127.0.0.1:9\n", encoding="utf-8"
    )
    return []


URLS: dict[str, Callable[[Path], list[str]]] = {
    "userinfo": lambda f: [f"--phyjudge-url=http://alice:{PASSWORD}@127.0.0.1:9/v1"],
    "token_as_user": lambda f: ["--phyjudge-url", f"http://{PASSWORD}@127.0.0.1:9"],
    "percent_encoded": lambda f: ["--phyjudge-url", f"http://a%40b:{PASSWORD}%21@127.0.0.1:9"],
    "second_of_two": lambda f: [
        "--phyjudge-url",
        f"http://127.0.0.1:9,https://bob:{PASSWORD}@127.0.0.1:10",
    ],
    "ini": _ini_url,
    "bad_scheme": lambda f: ["--phyjudge-url", f"ftp://alice:{PASSWORD}@judge"],
    "no_host": lambda f: ["--phyjudge-url", f"http://alice:{PASSWORD}@"],
}


def _secret_file(name: str, *argv: str) -> Probe:
    """``phyjudge ARGV`` given a secret file (``@secret`` in ``argv``) as an input."""
    state: dict[str, str] = {}

    def run(folder: Path) -> str:
        state["token"] = kit.secret(folder, "private/.env")
        secret = folder / "private" / ".env"
        secret.write_text(
            f"HF_TOKEN=hf_{state['token']}\nmachine h login u password {state['token']}\n",
            encoding="utf-8",
        )
        args = [str(secret) if a == "@secret" else a.replace("@f", str(folder)) for a in argv]
        return cli(*args)(folder)

    def check(folder: Path, text: str) -> str | None:
        written = [p for p in folder.iterdir() if p.is_dir() and p.name != "private"]
        return kit.leak(state["token"], text, *written)

    return Probe(SECRETS, name, run, ANY, check, QUICK)


def _env_secret(name: str, variable: str) -> Probe:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        env = {variable: f"tok-{PASSWORD}"}
        code, out = kit.run_pytest(
            folder, "--phyjudge-judge", "judges:make", "--phyjudge-report", "out/scores.json",
            "--phyjudge-html", "site", env=env,
        )  # fmt: skip
        return f"exit {code}\n{out}"

    return Probe(SECRETS, name, run, ANY, _no_secret(PASSWORD), 40.0)


def _score_dir_url(folder: Path) -> str:
    prompts = {"prompts": [{"video": "a", "prompt": "A ball falls.", "physical_laws": []}]}
    (folder / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
    kit.clips(folder, "a")
    code, out = kit.phyjudge(
        folder, "score-dir", "--videos", "v", "--prompts", "prompts.json", "--out",
        "out/scores.json", "--url", f"http://alice:{PASSWORD}@127.0.0.1:9", "--retries", "0",
        "--timeout", "2", "--cache-mode", "off",
    )  # fmt: skip
    return f"exit {code}\n{out}"


def credentials() -> Iterator[Probe]:
    for label, args in URLS.items():
        yield Probe(SECRETS, f"url_{label}", _pytest_secret(args), ANY, _written(PASSWORD), 40.0)
    yield Probe(SECRETS, "url_score_dir", _score_dir_url, ANY, _no_secret(PASSWORD), 40.0)
    yield _env_secret("env_hf_token", "HF_TOKEN")
    yield _env_secret("env_api_key", "PHYJUDGE_API_KEY")
    yield _secret_file("dotenv_as_report", "report", "@secret", "--html", "@f/site")
    yield _secret_file("dotenv_as_compare", "compare", "@secret", "@secret", "--format", "markdown")
    yield _secret_file(
        "netrc_as_prompts", "score-dir", "--videos", "@f", "--prompts", "@secret", "--out",
        "@f/out/scores.json", "--judge", "tiny",
    )  # fmt: skip
    yield _secret_file("dotenv_as_cache_import", "cache", "import", "@secret", "--cache", "@f/c")
    yield _secret_file(
        "dotenv_as_identity", "score-dir", "--videos", "@f", "--prompts", "@secret", "--out",
        "@f/out/scores.json", "--identity", "@secret", "--cache-mode", "only",
    )  # fmt: skip


# --------------------------------------------------------------------------- generator names

JUDGES = """
from pytest_phyjudge import ScriptedJudge

def make():
    return ScriptedJudge({"*": 4}, name="scripted-writers")
"""


def _generators(name: str, generators: tuple[str, ...]) -> Probe:
    """``score-dir`` over clips ``<generator>__a.mp4``: every generator's results in a file
    of its own with a printable name, and no raw control printed."""

    def run(folder: Path) -> str:
        (folder / "judges.py").write_text(JUDGES, encoding="utf-8")
        prompts = {"prompts": [{"video": "a", "prompt": "A ball falls.", "physical_laws": []}]}
        (folder / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
        kit.clips(folder, *(f"{g}__a" for g in generators))
        code, out = kit.phyjudge(
            folder, "score-dir", "--videos", "v", "--prompts", "prompts.json", "--out",
            "out/scores.json", "--judge", "judges:make", "--cache-mode", "off",
        )  # fmt: skip
        if problem := kit.raw_controls(out.replace("\r\n", "\n").replace("\r", "")):
            raise NotClean(problem)
        if "\x1b" in out:
            raise NotClean("a raw ESC reached the output")
        out_dir = folder / "out"
        written = sorted(os.listdir(out_dir)) if out_dir.is_dir() else []
        if code == 0:
            bad = [n for n in written if not n.isprintable() or n.startswith("scores..")]
            if bad:
                raise NotClean(f"a results file named {bad[0]!r}")
            found = set()
            for n in written:
                data = json.loads((out_dir / n).read_text(encoding="utf-8"))
                found.add(data["meta"].get("generator"))
            # A name that is no plain name is no generator: its clip must then be listed
            # (escaped) among those without a prompt, never silently dropped.
            missing = set(generators) - found
            unlisted = [g for g in missing if terminal_text(f"{g}__a.mp4") not in out]
            if unlisted:
                lost = len(unlisted)
                raise NotClean(f"{lost} generator(s) lost their results to another's file")
        return f"exit {code}\n{out}"

    return Probe(GENERATORS, f"generators_{name}", run, ANY, None, 60.0)


GENERATOR_SETS: dict[str, tuple[str, ...]] = {
    "osc8_link": ("plain", "g\x1b]8;;https:evil.example\x07CLICK\x1b]8;;\x07"),
    "cr_and_erase": ("plain", "b\r\x1b[2K"),
    "bidi_override": ("plain", "g\u202eevil"),
    "dotdot": ("plain", ".."),
    "empty": ("plain", ""),
    "case_only": ("Alpha", "alpha"),
    "space_vs_underscore": ("a b", "a_b"),
    "too_long": ("plain", "g" * 245),  # its clip fits a file name; scores.<it>.json not
    "windows_device": ("CON", "nul"),
    "newline": ("plain", "x\ny"),
}


def _beside_out(name: str, plant: Callable[[Path, Path], list[Path]]) -> Probe:
    """``score-dir`` of two generators' clips, where ``plant(folder, path)`` put something
    of the user's at one generator's results file (a name the user never gave)."""

    def run(folder: Path) -> str:
        (folder / "judges.py").write_text(JUDGES, encoding="utf-8")
        prompts = {"prompts": [{"video": "a", "prompt": "A ball falls.", "physical_laws": []}]}
        (folder / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
        kit.clips(folder, "alpha__a", "beta__a")
        (folder / "out").mkdir()
        before = kit.snapshot(*plant(folder, folder / "out" / "scores.beta.json"))
        code, out = kit.phyjudge(
            folder, "score-dir", "--videos", "v", "--prompts", "prompts.json", "--out",
            "out/scores.json", "--judge", "judges:make", "--cache-mode", "off",
        )  # fmt: skip
        if problem := kit.changed(before):
            raise NotClean(problem)
        return f"exit {code}\n{out}"

    return Probe(GENERATORS, f"results_file_{name}", run, ANY, None, 60.0)


def _user_results(folder: Path, path: Path) -> list[Path]:
    path.write_text('{"results": "the user\'s own"}\n', encoding="utf-8")
    return [path]


def _linked_results(folder: Path, path: Path) -> list[Path]:
    (kept,) = kit.user_files(folder, "elsewhere/mine.json")
    path.symlink_to(kept)
    return [kept]


def _piped_results(folder: Path, path: Path) -> list[Path]:
    os.mkfifo(path)
    return []


def generator_names() -> Iterator[Probe]:
    for name, generators in GENERATOR_SETS.items():
        yield _generators(name, generators)
    yield _beside_out("is_a_user_file", _user_results)
    yield _beside_out("is_a_symlink_out", _linked_results)
    yield _beside_out("is_a_pipe", _piped_results)


# --------------------------------------------------------------------------- chart targets


def _board(folder: Path) -> tuple[str, str]:
    scored = (("a", 4), ("b", 2))
    rows = [{"video": v, "prompt": "p", "physical_laws": [], "SA": s} for v, s in scored]
    for name in ("one", "two"):
        (folder / f"{name}.json").write_text(json.dumps({"meta": {}, "results": rows}))
    return str(folder / "one.json"), str(folder / "two.json")


def _chart(command: str, target: Callable[[Path], tuple[str, list[Path]]]) -> Probe:
    state: dict[str, Any] = {}

    def run(folder: Path) -> str:
        files = _board(folder)
        plot, kept = target(folder)
        state["before"] = kit.snapshot(*kept)
        return cli(command, *files, "--plot", plot)(folder)

    def check(folder: Path, text: str) -> str | None:
        return kit.changed(state["before"])

    return run, check  # type: ignore[return-value]


def _link(folder: Path) -> tuple[str, list[Path]]:
    (kept,) = kit.user_files(folder, "elsewhere/notes.txt")
    (folder / "chart.png").symlink_to(kept)
    return str(folder / "chart.png"), [kept]


def _pipe(folder: Path) -> tuple[str, list[Path]]:
    os.mkfifo(folder / "chart.png")
    return str(folder / "chart.png"), []


def _folder(folder: Path) -> tuple[str, list[Path]]:
    kept = kit.user_files(folder, "chart.png/inside.txt")
    return str(folder / "chart.png"), kept


def chart_targets() -> Iterator[Probe]:
    for command in ("leaderboard", "compare", "agree"):
        run, check = _chart(command, _link)  # type: ignore[misc]
        yield Probe(CHARTS, f"{command}_plot_symlink_out", run, ANY, check, 30.0)
    for name, target in (("pipe", _pipe), ("folder", _folder)):
        run, check = _chart("leaderboard", target)  # type: ignore[misc]
        yield Probe(CHARTS, f"leaderboard_plot_{name}", run, ANY, check, 30.0)

    def export(folder: Path) -> str:
        target = str(folder / "x\x1b[31m\x1b]8;;e\x07.jsonl")
        text = cli("cache", "export", target, "--cache", str(folder / "c"))(folder)
        if problem := kit.raw_controls(text):
            raise NotClean(problem)
        return text

    yield Probe(PRINTED, "cache_export_path_with_escapes", export, ANY, None, QUICK)


# --------------------------------------------------------------------------- issue references

#: ``#123`` (also ``\\#123``, which renders as it): GitHub links it to an issue and lists
#: the comment on that issue.
_REFERENCE = re.compile(r"(?<![\w&;])\\?#\d")
REFERENCES = {"issue": "fixes #123", "cross_repo": "octo/repo#7", "gh_prefix": "GH-#42"}


def _reference_check(folder: Path, text: str) -> str | None:
    found = _REFERENCE.search(text)
    return f"a live issue reference {text[found.start() : found.end() + 4]!r}" if found else None


def _reference_command(command: str, value: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        one, two = _board(folder)
        args = ("--label", value, "--label", "runB", "--format", "markdown")
        return cli(command, one, two, *args)(folder)

    return run


def _reference_summary(value: str) -> Callable[[Path], str]:
    """A pytest run whose judge is named ``value`` (its items fail, so the summary lists
    them), with a CI summary; the summary's text is what is checked."""

    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        (folder / "judges.py").write_text(SUMMARY_JUDGES.format(name=value), encoding="utf-8")
        summary = folder / "summary.md"
        summary.write_text("", encoding="utf-8")
        env = {"GITHUB_STEP_SUMMARY": str(summary)}
        kit.run_pytest(folder, "--phyjudge-judge", "judges:make", env=env)
        return summary.read_text(encoding="utf-8")

    return run


def issue_references() -> Iterator[Probe]:
    for label, value in REFERENCES.items():
        for command in ("leaderboard", "compare", "agree"):
            run = _reference_command(command, value)
            yield Probe(REFS, f"{command}_label_{label}", run, ANY, _reference_check, QUICK)
    for label, value in REFERENCES.items():
        run = _reference_summary(value)
        yield Probe(REFS, f"summary_judge_{label}", run, ANY, _reference_check, 40.0)


def writer_probes() -> list[Probe]:
    return [
        *forged_manifests(),
        *outputs_alike(),
        *credentials(),
        *generator_names(),
        *chart_targets(),
        *issue_references(),
    ]
