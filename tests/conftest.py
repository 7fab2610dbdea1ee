"""Shared fixtures: the tiny real-architecture judge, synthetic clips, real PhyGround data,
and the kit that writes scripted judges, suites and clips for in-process pytester runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

# No test may reach a model hub: a missing model must fail at once, not after retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist each worker (and each pytester subprocess it starts) takes one core:
# torch's default of one thread per core oversubscribes the machine. Measured on 2 cores
# with -n 2 (test_engine, test_merge, test_remote): 60.5 s by default, 37.7 s with one thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Imported here, before any pytester run: pytester's in-process runs drop modules first
# imported during the run, and numpy or torch cannot be imported twice in one process.
import av  # noqa: F401
import httpcore  # noqa: F401
import httpx  # noqa: F401
import numpy
import numpy.fft  # noqa: F401  (scipy imports it; numpy refuses to load it twice)
import PIL.Image  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
from pytester_kit import Kit

from pytest_phyjudge.engine.extras import LOCAL_MODULES, local_available
from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE
from pytest_phyjudge.testing import build_tiny_judge, write_test_video

#: The [local] extra (torch, transformers, peft, ...) is installed: the in-process judge runs.
#: Without it (the light core), the tests that need it are skipped, and say so.
HAS_LOCAL = local_available(LOCAL_MODULES)
if HAS_LOCAL:
    import decord  # noqa: F401
    import qwen_vl_utils  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401  (first imported lazily by video resizing; registers ops)
    import transformers.utils.logging

    # transformers gives its loggers a handler on the sys.stderr of the moment it first logs.
    # Made here, that is the session's stream; made inside a pytester run, it would be that
    # run's capture, closed afterwards, and every later warning would print a logging error.
    transformers.utils.logging.get_verbosity()

#: Fixtures that bring up a model in this process.
_LOCAL_FIXTURES = {"tiny_adapter", "tiny_judge", "trained_tiny_adapter", "trained_tiny_judge"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_LOCAL:
        return
    skip = pytest.mark.skip(reason='needs the [local] extra: pip install ".[local]"')
    for item in items:
        if item.get_closest_marker("local") or _LOCAL_FIXTURES & set(item.fixturenames):
            item.add_marker(skip)


#: ../shared beside the repository (present on developer machines and in CI).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PHYGROUND = SHARED / "phyground"


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adapter folder of a tiny random judge, built once per test session."""
    return build_tiny_judge(tmp_path_factory.mktemp("tiny-judge"))


@pytest.fixture(scope="session")
def tiny_judge(tiny_adapter: Path):
    """The tiny judge loaded through the real path (hub resolution, base, PEFT, processor)."""
    from pytest_phyjudge import load_judge

    judge = load_judge(tiny_adapter, device="cpu")
    yield judge
    judge.close()


@pytest.fixture(scope="session")
def trained_tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The format-trained tiny judge (what ``--phyjudge-judge tiny`` uses): built once per
    machine (about a minute), copied here."""
    from pytest_phyjudge.testing import ensure_tiny_judge

    return ensure_tiny_judge(tmp_path_factory.mktemp("trained-tiny"))


@pytest.fixture(scope="session")
def trained_tiny_judge(trained_tiny_adapter: Path):
    """The format-trained tiny judge, loaded through the real path."""
    from pytest_phyjudge import load_judge

    judge = load_judge(trained_tiny_adapter, device="cpu")
    yield judge
    judge.close()


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second 64x64 mp4 of a moving square."""
    return write_test_video(tmp_path_factory.mktemp("clips") / "square.mp4")


@pytest.fixture(scope="session")
def phyground_videos() -> list[Path]:
    """The real generated clips of ../shared/phyground/videos (skipped where absent)."""
    videos = sorted((PHYGROUND / "videos").glob("*.mp4"))
    if not videos:
        pytest.skip(f"no PhyGround clips at {PHYGROUND / 'videos'}")
    return videos


@pytest.fixture(scope="session")
def phyground_clips(phyground_videos: list[Path]) -> list[tuple[Path, str]]:
    """Each real clip with its own PhyGround caption (``<generator>__<prompt id>.mp4``)."""
    captions = {
        item["video"]: item["prompt"]
        for group in json.loads((PHYGROUND / "humaneval_prompts.json").read_text()).values()
        if isinstance(group, list)
        for item in group
    }
    return [(video, captions[video.stem.split("__", 1)[1]]) for video in phyground_videos]


@pytest.fixture
def kit(pytester: pytest.Pytester) -> Kit:
    """Scripted judges, suites and clips written into ``pytester.path`` (tests/pytester_kit.py)."""
    return Kit(pytester)


@pytest.fixture
def merged_dir(tmp_path: Path) -> Path:
    """What serve-command checks of a merged checkpoint: config and provenance."""
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / PROVENANCE_FILE).write_text(json.dumps({"adapter": "x/PhyJudge-9B"}))
    return folder
