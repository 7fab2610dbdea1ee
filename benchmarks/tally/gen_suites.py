"""Suites whose ``generator:`` tries to make pytest import a module of the suite's choosing
or call any importable callable (issue 19, item 4). Clean: no marker file appears, whatever
the run's outcome (a collection error naming the name, a failed case, or a skip)."""

from __future__ import annotations

from collections.abc import Iterator

from tally.model import SuiteInput, expect

CLS = "suite: generator names"
ANY = ("error", "failed", "passed", "skipped", "xfailed")


def _module(marker: str) -> bytes:
    return (
        f"open({marker!r}, 'w').write('imported')\n"
        f"def gen(prompt, seed=0, out_path=None, **params):\n"
        f"    open({marker + '_called'!r}, 'w').write(prompt)\n"
    ).encode()


def _suite(
    generator: str,
    prompt: str = "A ball falls.",
    *,
    top: bool = False,
    case: str = "g",
    params: str = "",
    videos: str = "missing/{id}.mp4",
) -> str:
    head = f"suite: s\n{'generator: ' + generator + chr(10) if top else ''}"
    case_text = f"  - id: {case}\n    prompt: {prompt!r}\n    laws: [gravity]\n"
    if not top:
        case_text += f"    generator: {generator}\n"
    case_text += params
    if videos:
        head += f"videos: {videos}\n"
    return head + "cases:\n" + case_text


def generator_suites(tag: str = "") -> Iterator[SuiteInput]:
    """``tag`` tells the markers of one session's inputs from another's."""
    cls = CLS + (f" ({tag})" if tag else "")
    t = tag.replace(" ", "_").replace("-", "_")

    def item(name: str, text: str, marker: str, extra: tuple = ()) -> SuiteInput:
        want = expect(*ANY, absent=(marker, marker + "_called"))
        return SuiteInput(cls, f"gen{t}_{name}", text, want, extra)

    for name, generator, top in (
        ("module_case", "evil_{t}_a:gen", False),
        ("module_top", "evil_{t}_b:gen", True),
        ("module_no_colon", "evil_{t}_c", False),
        ("module_dotted", "evil_{t}_d.gen", False),
    ):
        mod = generator.format(t=t).split(":")[0].split(".")[0]
        marker = f"pwned_{mod}"
        yield item(
            name, _suite(generator.format(t=t), top=top), marker, ((f"{mod}.py", _module(marker)),)
        )
    pkg = f"evilpkg_{t}"
    marker = f"pwned_{pkg}"
    yield item(
        "package",
        _suite(f"{pkg}.sub:gen"),
        marker,
        ((f"{pkg}/__init__.py", _module(marker)), (f"{pkg}/sub.py", b"def gen(*a, **k): pass\n")),
    )
    mod = f"evil_{t}_e"
    marker = f"pwned_{mod}"
    yield item(
        "module_video_exists",
        _suite(f"{mod}:gen", videos="v/{id}.mp4", case="a"),
        marker,
        ((f"{mod}.py", _module(marker)),),
    )
    for name, generator in (
        ("savez", "numpy:savez"),
        ("savez_compressed", "numpy:savez_compressed"),
    ):
        marker = f"pwned_{t}_{name}"
        yield SuiteInput(
            cls,
            f"gen{t}_numpy_{name}",
            _suite(generator, prompt=marker),
            expect(*ANY, absent=(marker + ".npz",)),
        )
    marker = f"pwned_{t}_savez_params"
    yield SuiteInput(
        cls,
        f"gen{t}_numpy_savez_params",
        _suite("numpy:savez", prompt=marker, params="    params: {data: [1, 2, 3]}\n"),
        expect(*ANY, absent=(marker + ".npz",)),
    )
    mod = f"evil_{t}_f"
    marker = f"pwned_{mod}"
    yield item(
        "module_with_seed",
        _suite(f"{mod}:gen", params="    seed: 3\n"),
        marker,
        ((f"{mod}.py", _module(marker)),),
    )
