"""How many hostile inputs get a clean outcome (issue 11's closing figure).

    python benchmarks/hostile_tally.py [--verbose] [--jobs N] [--keep] [--only-new] [--surface TEXT]

Builds its inputs at run time in a temporary folder: suites (YAML bombs, deep nesting, huge
numbers, control bytes, marks that would run code, bad fields, videos and prompt sets that
are not files), adapter folders (infer.py, templates), baselines, compare reports, cache
imports, command lines and bad clips. Suites run in one pytest session with a scripted judge
(a recorder plugin tells each file's outcome apart); the rest run through the Python API or
``phyjudge``'s ``main`` in a child process that is watched for hangs.

Issue 19 added the surfaces built since (``--only-new`` runs only these; ``--surface TEXT``
only the classes whose name holds TEXT): the HTML report's folder, sheets and clips
(tally/outputs.py), Markdown, terminal and plot outputs and the step summary
(tally/markdown.py), generator names in suites (tally/gen_suites.py), cache import, export
and replay (tally/cache_trust.py), duplicates and scores.json field types
(tally/duplicates.py), and judge servers (tally/servers.py, with ``kit.FakeServer``).
Later surfaces, each attacked by someone who had not written its defences: canary files and
servers during a check (tally/canary.py), the HTML page, its rating mode and ``agree``
(tally/rating.py), diffusers pipelines, images and the clips folder (tally/pipelines.py),
every file the project reads (tally/readers.py) and writes (tally/writers.py), and smaller
defects (tally/small_defects.py).

Clean: a result within the input's limit (60 s unless it says less), no traceback or
INTERNALERROR, an error (not a crash or a silent pass) where one is due, the message naming
the file, line, field or thing, and no marker file made by code that should never run.
Since issue 19 clean also covers the outcome, checked after each input (``Probe.check``,
``NotClean``): no user's file deleted or changed, no secret's bytes in an artifact or
printed, no live Markdown/HTML or raw terminal control from a name, no tampered cache
record believed, no duplicate row silently dropped, memory under 2.5 GiB where measured.
Any clear refusal is as clean as a safe success; no check depends on message wording or on
the names of new flags or files. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tally.gen_suites import generator_suites
from tally.model import Outcome, Probe, SuiteInput
from tally.probe_run import run_probes
from tally.pytest_batch import batch_problem, run_batch
from tally.registry import all_api_probes, new_probes
from tally.suites import all_suites

JUDGES = """
from pytest_phyjudge import ScriptedJudge

def make():
    return ScriptedJudge({"*": 4}, name="scripted-tally")
"""


def _suite_unit(
    folder: Path, inputs: list[SuiteInput], extra: tuple[str, ...] = ()
) -> list[Outcome]:
    if not inputs:
        return []
    folder.mkdir()
    (folder / "judges.py").write_text(JUDGES, encoding="utf-8")
    (folder / "v").mkdir()
    (folder / "v" / "a.mp4").write_text("a stand-in clip: the scripted judge never decodes it")
    outcomes = run_batch(folder, inputs, "judges:make", extra)
    problem = batch_problem(folder)
    if problem:
        outcomes.append(Outcome("suite session", "session", False, 0.0, problem))
    return outcomes


def _probe_unit(folder: Path, probes: list[Probe]) -> list[Outcome]:
    folder.mkdir()
    return run_probes(folder, probes) if probes else []


#: The second suite session replays only (issue 19: generators were imported there too).
REPLAY = ("--phyjudge-cache-mode", "only", "--phyjudge-cache", "replay-cache")


def _print_table(outcomes: Sequence[Outcome]) -> None:
    by_class: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_class[outcome.cls].append(outcome)
    width = max((len(c) for c in by_class), default=5)
    print(f"\n{'class':<{width}}  tried  clean  not clean")
    for cls, items in by_class.items():
        bad = [o for o in items if not o.clean]
        print(f"{cls:<{width}}  {len(items):5d}  {len(items) - len(bad):5d}  {len(bad):9d}")
        for outcome in bad:
            print(f"{'':<{width}}    - {outcome.name}: {outcome.why}")
    clean = sum(o.clean for o in outcomes)
    print(f"{'all':<{width}}  {len(outcomes):5d}  {clean:5d}  {len(outcomes) - clean:9d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="one line per input")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--only-new", action="store_true", help="only issue 19's inputs (report, Markdown, ...)"
    )
    parser.add_argument("--surface", default="", help="only the classes whose name holds this text")
    args = parser.parse_args(argv)
    jobs = max(1, args.jobs)
    root = Path(tempfile.mkdtemp(prefix="hostile-tally-"))
    started = time.perf_counter()

    def keep(items: list) -> list:
        return [i for i in items if args.surface.lower() in i.cls.lower()]

    old_suites = [] if args.only_new else keep(all_suites())
    suites = [*old_suites, *keep(list(generator_suites()))]
    replayed = keep(list(generator_suites("replay")))
    probes = keep([*([] if args.only_new else all_api_probes()), *new_probes()])
    units: list[Callable[[], list[Outcome]]] = [
        lambda: _suite_unit(root / "suites", suites),
        lambda: _suite_unit(root / "suites-replay", replayed, REPLAY),
    ]
    units += [lambda i=i: _probe_unit(root / f"probes{i}", probes[i::jobs]) for i in range(jobs)]
    with ThreadPoolExecutor(max_workers=jobs + 1) as pool:
        outcomes = [o for result in pool.map(lambda unit: unit(), units) for o in result]
    if args.verbose:
        for o in outcomes:
            state = "clean" if o.clean else f"NOT CLEAN ({o.why})"
            print(f"{o.cls} | {o.name} | {state} | {o.seconds:.2f} s")
    _print_table(outcomes)
    print(f"\n{time.perf_counter() - started:.0f} s in all; inputs under {root}")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
