"""The example suite: its clips are deterministic, show the physics (and the violations) they
claim, and its YAML suite collects into the items the README promises."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_phyjudge.suites import load_suite

EXAMPLE = Path(__file__).resolve().parents[1] / "example_suite"


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# Loaded by path: example_suite/ is a folder of example files, not a package.
rc = _load("phyjudge_example_render_clips", EXAMPLE / "render_clips.py")


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    """Every clip's frames as they go to the encoder, rendered once for this module."""
    return {name: rc.render_frames(name) for name in rc.CLIP_NAMES}


def ball_track(clip: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame, where the ball is, found by colour alone (the only saturated red in the
    scene): ``x``, ``y`` (centroid weighted by redness, so sub-pixel), ``bottom`` (lowest
    row) and ``area`` (pixels); x, y and bottom are NaN where the ball is hidden."""
    rgb = clip.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r > 50) & (r > 2 * g) & (r > 2 * b)
    redness = np.clip(r - np.maximum(g, b), 0, None)
    rows = np.arange(clip.shape[1])[:, None]
    cols = np.arange(clip.shape[2])[None, :]
    track: dict[str, list[float]] = {"x": [], "y": [], "bottom": [], "area": []}
    for mask, weight in zip(red, redness, strict=True):
        area = int(mask.sum())
        track["area"].append(area)
        if area < 20:
            for key in ("x", "y", "bottom"):
                track[key].append(np.nan)
            continue
        # The anti-aliased rim counts in proportion to its colour: one pixel around the mask.
        rim = mask.copy()
        for axis in (0, 1):
            for step in (1, -1):
                rim |= np.roll(mask, step, axis)
        w = weight * rim
        track["x"].append(float((w * cols).sum() / w.sum()))
        track["y"].append(float((w * rows).sum() / w.sum()))
        track["bottom"].append(float(np.nonzero(mask)[0].max()))
    return {key: np.array(values) for key, values in track.items()}


# -- determinism and files -------------------------------------------------------------------


def test_frames_are_identical_across_renders(frames: dict[str, np.ndarray]) -> None:
    for name in rc.CLIP_NAMES:
        again = rc.render_frames(name)
        assert again.dtype == np.uint8
        assert again.shape == (rc.N_FRAMES, rc.HEIGHT, rc.WIDTH, 3)
        assert np.array_equal(again, frames[name]), name


def test_frame_size_and_length_suit_the_encoder_and_the_judge() -> None:
    # Multiples of 16 so libx264 never resizes; 3-4 s at 16-24 fps.
    assert rc.WIDTH % 16 == 0 and rc.HEIGHT % 16 == 0
    assert 16 <= rc.FPS <= 24
    assert 3.0 <= rc.N_FRAMES / rc.FPS <= 4.0


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The four clips rendered once into a fresh folder."""
    return rc.render_all(tmp_path_factory.mktemp("clips"))


def decode_all(path: Path) -> np.ndarray:
    """Every frame of the clip at ``path``."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def same_clip(a: Path, b: Path) -> bool:
    """Whether two renders show the same clip: the same frames to within 2 levels of 255 on
    average. Exact bytes are not asked: in the light venv, after other tests ran in the same
    worker, x264 was seen to encode the same frames otherwise. Two encodes of one clip's
    frames differ by 0.6-0.8 levels on average; two of the example's clips by 3.8."""
    frames_a, frames_b = decode_all(a), decode_all(b)
    if frames_a.shape != frames_b.shape:
        return False
    return float(np.abs(frames_a.astype(np.int16) - frames_b).mean()) < 2.0


def test_render_all_writes_small_decodable_identical_clips(
    rendered: list[Path], tmp_path: Path
) -> None:
    assert [p.name for p in rendered] == [f"{n}.mp4" for n in rc.CLIP_NAMES]
    again = rc.render_all(tmp_path)
    for a, b in zip(rendered, again, strict=True):
        assert 0 < a.stat().st_size < 300 * 1024, (a.name, a.stat().st_size)
        assert decode_all(a).shape == (rc.N_FRAMES, rc.HEIGHT, rc.WIDTH, 3)
        assert same_clip(a, b), a.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in again), (
        "a temporary file was left behind"
    )


def test_render_all_keeps_existing_clips_unless_forced(
    rendered: list[Path], tmp_path: Path
) -> None:
    paths = [Path(shutil.copy2(p, tmp_path / p.name)) for p in rendered]
    stamps = [p.stat().st_mtime_ns for p in paths]
    paths[0].write_bytes(b"not a video, but present")
    paths[1].unlink()
    again = rc.render_all(tmp_path)
    assert again == paths
    assert again[0].read_bytes() == b"not a video, but present"  # kept
    assert same_clip(again[1], rendered[1])  # re-rendered
    assert [p.stat().st_mtime_ns for p in again[2:]] == stamps[2:]  # untouched
    rc.render_all(tmp_path, force=True)
    assert same_clip(paths[0], rendered[0])  # the placeholder replaced by the clip


def test_the_script_lists_the_clips(
    rendered: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for p in rendered:
        shutil.copy2(p, tmp_path / p.name)
    assert rc.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}.mp4" in out for name in rc.CLIP_NAMES), out


# -- the physics in the pixels ---------------------------------------------------------------


def test_falling_ball_accelerates_at_g(frames: dict[str, np.ndarray]) -> None:
    y = ball_track(frames["ball_falls"])["y"]
    # The first fall: up to the frame before y stops increasing (the landing).
    landing = int(np.argmax(np.diff(y) <= 0))
    fall = y[:landing]
    assert len(fall) >= 10
    g_px = rc.G * rc.PX_PER_M / rc.FPS**2  # pixels per frame^2
    second = np.diff(fall, 2)
    # Constant and positive (the ball crossing the skirting board shifts a few by ~0.3 px).
    assert np.all(second > 0), second
    assert np.allclose(second, g_px, atol=0.3 * g_px), (second, g_px)
    assert abs(second.mean() - g_px) < 0.03 * g_px
    # A quadratic y = y0 + g t^2 / 2 explains the fall to a fraction of a pixel, from rest.
    t = np.arange(len(fall), dtype=float)
    coef = np.polyfit(t, fall, 2)
    residual = fall - np.polyval(coef, t)
    assert abs(2 * coef[0] - g_px) < 0.02 * g_px
    assert abs(coef[1]) < 0.3  # dropped, not thrown
    assert np.abs(residual).max() < 0.3


def test_falling_ball_bounces_lower_each_time(frames: dict[str, np.ndarray]) -> None:
    track = ball_track(frames["ball_falls"])
    y, bottom = track["y"], track["bottom"]
    floor = rc.CONTACT_Y
    assert bottom.max() >= floor - 2  # it reaches the floor
    # Apexes: local minima of y after the first landing, while the ball still bounces.
    apex = [i for i in range(1, len(y) - 1) if y[i] < y[i - 1] and y[i] <= y[i + 1]]
    heights = [floor - bottom[i] for i in apex if floor - bottom[i] > 3]
    assert len(heights) >= 2, heights
    start = floor - bottom[0]
    assert all(h2 < h1 for h1, h2 in zip([start, *heights], heights, strict=False)), heights


def test_ball_passes_through_the_wall(frames: dict[str, np.ndarray]) -> None:
    track = ball_track(frames["ball_through_wall"])
    x, bottom, area = track["x"], track["bottom"], track["area"]
    seen = ~np.isnan(x)
    assert x[0] < rc.WALL_X0_PX - rc.RADIUS  # starts left of the wall
    assert x[-1] > rc.WALL_X1_PX + rc.RADIUS  # ends right of it
    # It vanishes inside the wall once, for one unbroken stretch ...
    hidden = np.flatnonzero(~seen)
    assert len(hidden) >= 3 and np.all(np.diff(hidden) == 1), hidden
    assert x[hidden[0] - 1] < rc.WALL_X1_PX < x[hidden[-1] + 1]
    # ... and, wherever it is in full view, it is on the floor: through the wall, not over.
    whole = area >= 0.9 * area.max()
    assert whole[:10].all() and whole[-10:].all()
    assert np.all(np.abs(bottom[whole] - rc.CONTACT_Y) <= 2)


def test_thrown_ball_freezes_in_mid_air(frames: dict[str, np.ndarray]) -> None:
    clip = frames["ball_stops_midair"]
    track = ball_track(clip)
    x, y, bottom = track["x"], track["y"], track["bottom"]
    assert not np.isnan(x).any()
    # It moves at first, falling back after its apex ...
    assert np.ptp(x[:10]) > 20 and np.diff(y[:10], 2).mean() > 0
    # ... then hangs: the last 2.5 s are the very same picture, well above the floor.
    still = clip[-rc.FPS * 5 // 2 :]
    assert np.all(still == still[0])
    assert rc.CONTACT_Y - bottom[-1] > 50
    assert np.ptp(x[-60:]) == 0 and np.ptp(y[-60:]) == 0


def test_sliding_ball_never_slows(frames: dict[str, np.ndarray]) -> None:
    track = ball_track(frames["ball_slides_forever"])
    x, bottom = track["x"], track["bottom"]
    assert not np.isnan(x).any()
    speed = np.diff(x)  # px per frame
    expected = 1.15 * rc.PX_PER_M / rc.FPS
    assert np.allclose(speed, expected, atol=0.1), speed
    assert abs(speed[-rc.FPS :].mean() - speed[: rc.FPS].mean()) < 0.05
    assert np.all(np.abs(bottom - rc.CONTACT_Y) <= 2)  # on the floor throughout


# -- the YAML suite --------------------------------------------------------------------------


def _suite_copy(pytester: pytest.Pytester) -> Path:
    """The example suite copied into pytester's folder (its clips get rendered there)."""
    for name in ("basics.phyjudge.yaml", "conftest.py", "render_clips.py", "test_example.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    return pytester.path


@pytest.mark.local  # the tiny judge runs in this process
def test_the_quickstart_exits_0_and_ends_with_the_next_step(
    pytester: pytest.Pytester, rendered: list[Path]
) -> None:
    """The example suite's first command on the tiny judge (a part of it, for time) exits
    0 with --phyjudge-verdicts report, and its summary ends saying what the verdicts mean."""
    _suite_copy(pytester)
    (pytester.path / "videos").mkdir()
    for clip in rendered:  # rendered once for the module, not again by the suite's conftest
        shutil.copy2(clip, pytester.path / "videos" / clip.name)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-k", "fixture or thrown",
        "--phyjudge-judge", "tiny", "--phyjudge-verdicts", "report",
        "--phyjudge-report", "scores.json",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    last = [line for line in result.outlines if line.startswith("phyjudge: ")][-1]
    assert last.startswith("phyjudge: the tiny judge's scores are meaningless (it checks")
    assert re.search(r": \d+ of \d+ verdicts? would fail.*\. Next: run a suite of your own", last)
    assert result.outlines.index(last) == len(result.outlines) - 2  # then pytest's own line


def test_yaml_suite_loads_with_the_right_laws() -> None:
    suite = load_suite(EXAMPLE / "basics.phyjudge.yaml")
    cases = {c.id: c for c in suite.cases}
    assert list(cases) == list(rc.CLIP_NAMES)
    assert set(cases["ball_falls"].laws) >= {"gravity", "collision"}
    assert "impenetrability" in cases["ball_through_wall"].laws
    assert "gravity" in cases["ball_stops_midair"].laws
    assert "inertia" in cases["ball_slides_forever"].laws
    for cid, case in cases.items():
        assert case.video == EXAMPLE / "videos" / f"{cid}.mp4"
        xfail = [m for m in case.marks if m.name == "xfail"]
        # Only the clips that break a law on purpose are expected to fail.
        assert bool(xfail) == (cid != "ball_falls"), cid
        for mark in xfail:
            assert mark.kwargs.get("strict") is False and "on purpose" in mark.kwargs["reason"]


def test_example_suite_collects(pytester: pytest.Pytester) -> None:
    _suite_copy(pytester)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    axes = {
        "ball_falls": ["gravity", "collision", "shadow"],
        "ball_through_wall": ["impenetrability", "collision"],
        "ball_stops_midair": ["gravity", "inertia"],
        "ball_slides_forever": ["inertia"],
    }
    expected = {
        f"basics.phyjudge.yaml::{cid}::{axis}"
        for cid, laws in axes.items()
        for axis in ["SA", "PTV", "persistence", *laws]
    }
    collected = {line.strip() for line in result.outlines if "::" in line}
    assert {i for i in collected if i.startswith("basics.")} == expected, result.stdout.str()
    assert "test_example.py::test_dropped_ball_falls_under_gravity" in collected
    n_py = sum(1 for i in collected if i.startswith("test_example.py::"))
    assert n_py == 7
    result.stdout.fnmatch_lines([f"{len(expected) + n_py} tests collected*"])
    assert result.ret == 0
    for cid in axes:
        assert (pytester.path / "videos" / f"{cid}.mp4").is_file()
