"""Render the example suite's four synthetic clips, deterministically, with numpy + PyAV.

One clip obeys physics (``ball_falls``); three break it on purpose (``ball_through_wall``,
``ball_stops_midair``, ``ball_slides_forever``), so a good judge should fail them. Motion is
computed in metres and seconds and drawn at ``PX_PER_M``; every pixel comes from closed-form
maths and fixed seeds, so two renders give identical frames.

    python example_suite/render_clips.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Frame size: both multiples of 16, so every H.264 macroblock is whole.
WIDTH, HEIGHT = 480, 272
FPS = 24
DURATION_S = 3.5
N_FRAMES = round(FPS * DURATION_S)

#: The camera: a pinhole FOCAL px from the image plane, CAMERA_HEIGHT m above the floor,
#: looking level (the horizon is at HORIZON_Y). The ball moves in the plane PATH_DEPTH m away,
#: where one metre is PX_PER_M pixels, so its motion on screen is its motion in metres, scaled.
CX, HORIZON_Y = WIDTH / 2, 76.0
FOCAL = 400.0
CAMERA_HEIGHT = 1.6
PATH_DEPTH = 4.0
BACK_DEPTH = 9.0  # the back wall of the room
PX_PER_M = FOCAL / PATH_DEPTH
G = 9.81  # m/s^2
RADIUS = 16  # ball radius in pixels (0.16 m)
#: y of the line where the ball touches the floor.
CONTACT_Y = HORIZON_Y + FOCAL * CAMERA_HEIGHT / PATH_DEPTH
#: The low wall of ``ball_through_wall`` (metres): it runs from the camera to the back wall,
#: so nothing rolling across the floor can get round it.
WALL_X = (0.5, 0.8)
WALL_HEIGHT = 0.4
#: Screen x of the wall's faces where it crosses the ball's path.
WALL_X0_PX, WALL_X1_PX = (CX + x * PX_PER_M for x in WALL_X)
#: Where the light comes from (x right, y down, z towards the camera), for shading and shadows.
LIGHT = (-0.2, -0.85, 0.5)

BALL_RGB = np.array([212.0, 44.0, 34.0])
DEFAULT_OUT = Path(__file__).resolve().parent / "videos"


@dataclass(frozen=True)
class BallState:
    """The ball in one frame: centre x and bottom height above the floor (px), stripe angle."""

    x: float
    height: float
    spin: float = 0.5

    @property
    def y(self) -> float:
        """Centre y in image coordinates (down is positive)."""
        return CONTACT_Y - RADIUS - self.height


@dataclass(frozen=True)
class Clip:
    """What one clip shows: the floor it is drawn on, the wall if any, the ball per frame."""

    name: str
    description: str
    floor: str  # "wood" or "rough"
    wall: bool
    states: tuple[BallState, ...]


def _times() -> np.ndarray:
    return np.arange(N_FRAMES) / FPS


# -- motion (metres and seconds, converted to pixels at the end) -----------------------------


def bounce_height(t: float, drop_m: float, restitution: float) -> float:
    """Height (m) of a ball dropped from rest at ``drop_m`` at time ``t``: free fall
    h = drop - g t^2 / 2 until the floor, then bounces that keep ``restitution`` of the speed."""
    t_land = math.sqrt(2 * drop_m / G)
    if t < t_land:
        return drop_m - 0.5 * G * t * t
    t -= t_land
    speed = restitution * G * t_land
    while speed > 0.05:
        flight = 2 * speed / G
        if t < flight:
            return speed * t - 0.5 * G * t * t
        t -= flight
        speed *= restitution
    return 0.0


def _ball_falls() -> Clip:
    drop_m = 1.8
    states = tuple(
        BallState(x=240.0, height=bounce_height(t, drop_m, 0.7) * PX_PER_M) for t in _times()
    )
    return Clip(
        "ball_falls",
        "A ball dropped from 1.8 m falls with y = g t^2 / 2 and bounces, each bounce lower.",
        "wood",
        False,
        states,
    )


def _ball_through_wall() -> Clip:
    # Rolls at a steady 1.1 m/s (rolling resistance neglected): the stripe turns by x / r.
    x0, speed = 40.0, 1.1 * PX_PER_M
    states = tuple(
        BallState(x=x0 + speed * t, height=0.0, spin=0.5 + speed * t / RADIUS) for t in _times()
    )
    return Clip(
        "ball_through_wall",
        "A ball rolls into a low wall that spans the floor and comes out the other side.",
        "wood",
        True,
        states,
    )


def _ball_stops_midair() -> Clip:
    # Thrown from 0.8 m at (1.5, 4.5) m/s; at 0.8 s, falling, 1.26 m up, it freezes for good.
    x0, h0, vx, vy, t_freeze = 50.0, 0.8, 1.5, 4.5, 0.8
    states = []
    for t in _times():
        t = min(t, t_freeze)
        height = (h0 + vy * t - 0.5 * G * t * t) * PX_PER_M
        states.append(BallState(x=x0 + vx * t * PX_PER_M, height=height, spin=0.5 + 6.0 * t))
    return Clip(
        "ball_stops_midair",
        "A thrown ball flies in a parabola, then stops dead in mid-air and hangs there.",
        "wood",
        False,
        tuple(states),
    )


def _ball_slides_forever() -> Clip:
    # Slides (no spin) at a constant 1.15 m/s across a rough floor: friction does nothing.
    x0, speed = 40.0, 1.15 * PX_PER_M
    states = tuple(BallState(x=x0 + speed * t, height=0.0, spin=0.5) for t in _times())
    return Clip(
        "ball_slides_forever",
        "A ball slides across a rough concrete floor without spinning and without slowing.",
        "rough",
        False,
        states,
    )


CLIPS: dict[str, Callable[[], Clip]] = {
    "ball_falls": _ball_falls,
    "ball_through_wall": _ball_through_wall,
    "ball_stops_midair": _ball_stops_midair,
    "ball_slides_forever": _ball_slides_forever,
}
CLIP_NAMES: tuple[str, ...] = tuple(CLIPS)


def clip(name: str) -> Clip:
    """The motion of one clip (ground truth, before drawing)."""
    if name not in CLIPS:
        raise KeyError(f"unknown clip {name!r}; the clips are {', '.join(CLIP_NAMES)}")
    return CLIPS[name]()


# -- drawing ---------------------------------------------------------------------------------

#: The static scene is ray-cast at this many samples per pixel side, then averaged (AA).
SUPERSAMPLE = 2


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _hash01(ix: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per integer lattice point (integer maths only,
    so the same on every machine)."""
    h = ix.astype(np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= iz.astype(np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= np.uint64(seed) * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return (h >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def _value_noise(x: np.ndarray, z: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1] over floor coordinates (metres), features ``cell`` m wide."""
    gx, gz = x / cell, z / cell
    ix, iz = np.floor(gx), np.floor(gz)
    fx, fz = _smoothstep(0, 1, gx - ix), _smoothstep(0, 1, gz - iz)
    v00, v10 = _hash01(ix, iz, seed), _hash01(ix + 1, iz, seed)
    v01, v11 = _hash01(ix, iz + 1, seed), _hash01(ix + 1, iz + 1, seed)
    return (v00 * (1 - fx) + v10 * fx) * (1 - fz) + (v01 * (1 - fx) + v11 * fx) * fz


def _line(dist_px: np.ndarray, half_width: float = 0.6) -> np.ndarray:
    """Coverage of a line ``half_width`` px wide at ``dist_px`` screen pixels from a point."""
    return np.clip(half_width + 0.5 - dist_px, 0.0, 1.0)


def _wood(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A floor of boards running left-right, with seams, staggered ends and a soft grain."""
    board, length = 0.16, 1.3
    dy_dz = FOCAL * CAMERA_HEIGHT / z**2  # screen px per metre of depth, here
    row = np.floor(z / board)
    seam = _line(np.abs(z - np.round(z / board) * board) * dy_dz)
    seam *= np.clip((board * dy_dz - 2.0) / 3.0, 0, 1)  # fade seams closer than ~3 px
    along = x - _hash01(row, np.zeros_like(row), 3) * length
    piece = np.floor(along / length)
    joint = _line(np.abs(along - np.round(along / length) * length) * FOCAL / z)
    tone = 0.88 + 0.2 * _hash01(row, piece, 5)
    grain = 1 + 0.05 * np.sin(x * 31 + 5 * np.sin(z * 23 + row) + 2 * row)
    shade = tone * grain * (1 - 0.35 * np.maximum(seam, joint))
    return np.array([178.0, 134, 92]) * shade[..., None]


def _concrete(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A rough, gritty concrete floor: blotches, grain and dark grit."""
    n = (
        0.5 * _value_noise(x, z, 0.7, 1)
        + 0.3 * _value_noise(x, z, 0.15, 2)
        + 0.2 * _value_noise(x, z, 0.03, 3)
    )
    grit = _hash01(np.floor(x / 0.025), np.floor(z / 0.025), 4) > 0.94
    shade = (0.72 + 0.5 * n) * np.where(grit, 0.72, 1.0)
    return np.array([146.0, 142, 134]) * shade[..., None]


def _blocks(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The wall's side face: courses of concrete blocks with mortar, in wall coordinates."""
    block, course = 0.4, WALL_HEIGHT / 3
    k = np.floor(y / course)
    along = z + 0.5 * block * (k % 2)
    mortar = np.maximum(
        _line(np.abs(y - np.round(y / course) * course) * FOCAL / z, 0.5),
        _line(np.abs(along - np.round(along / block) * block) * FOCAL * WALL_X[0] / z**2, 0.5),
    )
    tone = 0.92 + 0.12 * _hash01(k, np.floor(along / block), 6)
    return np.array([150.0, 148, 143]) * (tone * (1 - 0.3 * mortar))[..., None]


def _scene(floor: str, wall: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Ray-cast the static room: back wall, floor, and the low wall if ``wall``.

    Returns the image (float RGB) and, with a wall, the fraction of each pixel covered by
    wall that is nearer the camera than the ball's path (the ball goes behind it there).
    """
    s = SUPERSAMPLE
    ys, xs = np.mgrid[0 : HEIGHT * s, 0 : WIDTH * s].astype(np.float64)
    # Each sample's ray is (u, v, 1) from the camera at height CAMERA_HEIGHT; v points up.
    u = ((xs + 0.5) / s - CX) / FOCAL
    v = (HORIZON_Y - (ys + 0.5) / s) / FOCAL
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(v < 0, CAMERA_HEIGHT / -v, np.inf)
        t_top = np.where(v < 0, (CAMERA_HEIGHT - WALL_HEIGHT) / -v, np.inf)
        t_side = np.where(u > 0, WALL_X[0] / u, np.inf)
    hits = {"back": np.full(u.shape, BACK_DEPTH), "floor": np.minimum(t_floor, BACK_DEPTH)}
    if wall:
        x_top = u * t_top
        on_top = (x_top >= WALL_X[0]) & (x_top <= WALL_X[1]) & (t_top <= BACK_DEPTH)
        y_side = CAMERA_HEIGHT + v * t_side
        on_side = (y_side >= 0) & (y_side <= WALL_HEIGHT) & (t_side <= BACK_DEPTH)
        hits["top"] = np.where(on_top, t_top, np.inf)
        hits["side"] = np.where(on_side, t_side, np.inf)
    names = list(hits)
    depth_stack = np.stack([hits[n] for n in names])
    nearest = np.argmin(depth_stack, axis=0)
    depth = np.take_along_axis(depth_stack, nearest[None], axis=0)[0]
    img = np.zeros((*u.shape, 3))

    # Back wall: a soft gradient, a skirting board at the bottom.
    yb = CAMERA_HEIGHT + v * BACK_DEPTH
    t = np.clip(yb / 2.6, 0, 1)[..., None]
    back = (1 - t) * np.array([184.0, 191, 204]) + t * np.array([210.0, 216, 226])
    back = np.where((yb < 0.1)[..., None], [228.0, 224, 216], back)
    back *= (1 - 0.35 * _line(np.abs(yb - 0.1) * FOCAL / BACK_DEPTH, 0.5))[..., None]
    img = np.where((nearest == names.index("back"))[..., None], back, img)

    # Floor, lit a little more towards the camera; the wall casts a shadow to its right.
    is_floor = nearest == names.index("floor")
    fz = np.where(is_floor, depth, PATH_DEPTH)
    fx = u * fz
    floor_rgb = _wood(fx, fz) if floor == "wood" else _concrete(fx, fz)
    light = 0.82 + 0.18 * np.clip((BACK_DEPTH - fz) / 4.0, 0, 1)
    if wall:
        reach = WALL_HEIGHT * abs(LIGHT[0] / LIGHT[1])
        past = fx - WALL_X[1]
        light *= 1 - 0.35 * (past >= 0) * np.sqrt(np.clip(1 - past / reach, 0, 1))
        before = WALL_X[0] - fx
        light *= 1 - 0.2 * np.clip(1 - before / 0.06, 0, 1) * (before >= 0)
    img = np.where(is_floor[..., None], floor_rgb * light[..., None], img)

    occluder = None
    if wall:
        tz = np.where(np.isfinite(t_top), t_top, PATH_DEPTH)
        top_rgb = (
            np.array([206.0, 203, 196]) * (0.93 + 0.1 * _value_noise(u * tz, tz, 0.2, 8))[..., None]
        )
        sz = np.where(np.isfinite(t_side), t_side, PATH_DEPTH)
        side_rgb = _blocks(sz, np.clip(CAMERA_HEIGHT + v * sz, 0, WALL_HEIGHT)) * 0.9
        img = np.where((nearest == names.index("top"))[..., None], top_rgb, img)
        img = np.where((nearest == names.index("side"))[..., None], side_rgb, img)
        near = np.isin(nearest, [names.index("top"), names.index("side")]) & (depth < PATH_DEPTH)
        occluder = near.reshape(HEIGHT, s, WIDTH, s).mean(axis=(1, 3))

    # A light vignette so the frame does not look flat.
    r2 = (u * FOCAL / (WIDTH * 0.75)) ** 2 + ((v * FOCAL + 10) / (HEIGHT * 0.9)) ** 2
    img *= (1 - 0.22 * r2)[..., None]
    return img.reshape(HEIGHT, s, WIDTH, s, 3).mean(axis=(1, 3)), occluder


_LIGHT = np.array(LIGHT) / np.linalg.norm(LIGHT)
_HALF = (_LIGHT + np.array([0.0, 0, 1])) / np.linalg.norm(_LIGHT + np.array([0.0, 0, 1]))


def _draw_shadow(img: np.ndarray, state: BallState) -> None:
    """A soft shadow on the floor below the ball, along the light: smaller, fainter and
    further aside the higher the ball is."""
    lift = min(state.height / (1.8 * PX_PER_M), 1.0)
    cx = state.x + state.height * abs(LIGHT[0] / LIGHT[1])
    a = RADIUS * (1.1 - 0.4 * lift)
    b = a * CAMERA_HEIGHT / PATH_DEPTH * 1.3
    opacity = 0.6 * (1 - 0.6 * lift)
    x0, x1 = max(int(cx - a - 2), 0), min(int(cx + a + 3), WIDTH)
    y0, y1 = max(int(CONTACT_Y - b - 2), 0), min(int(CONTACT_Y + b + 3), HEIGHT)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    q = np.sqrt(((xx - cx) / a) ** 2 + ((yy - CONTACT_Y) / b) ** 2)
    dark = opacity * _smoothstep(1.0, 0.3, q)
    img[y0:y1, x0:x1] *= (1 - dark)[..., None]


def _draw_ball(img: np.ndarray, state: BallState) -> None:
    """An anti-aliased, lit sphere: diffuse shading, a specular highlight and a dark band
    (a seam) at angle ``spin``, so that rolling, spinning and sliding look different."""
    cx, cy = state.x, state.y
    x0, x1 = max(int(cx - RADIUS - 2), 0), min(int(cx + RADIUS + 3), WIDTH)
    y0, y1 = max(int(cy - RADIUS - 2), 0), min(int(cy + RADIUS + 3), HEIGHT)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    dx, dy = xx - cx, yy - cy
    alpha = np.clip(RADIUS + 0.5 - np.hypot(dx, dy), 0.0, 1.0)
    nx, ny = dx / RADIUS, dy / RADIUS
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.0, 1.0))
    diffuse = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
    specular = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0.0, 1.0) ** 30
    seam = np.abs(nx * math.cos(state.spin) + ny * math.sin(state.spin))
    base = BALL_RGB * (1 - 0.55 * _smoothstep(0.24, 0.16, seam))[..., None]
    rgb = base * (0.3 + 0.8 * diffuse)[..., None] + 170.0 * specular[..., None]
    patch = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = patch * (1 - alpha[..., None]) + rgb * alpha[..., None]


def draw(c: Clip) -> np.ndarray:
    """The frames of a clip as uint8, shape (frames, HEIGHT, WIDTH, 3)."""
    background, occluder = _scene(c.floor, c.wall)
    frames = np.empty((len(c.states), HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i, state in enumerate(c.states):
        img = background.copy()
        _draw_shadow(img, state)
        _draw_ball(img, state)
        if occluder is not None:
            # Where the wall is nearer than the ball's path, the wall is what the camera sees.
            cover = occluder[..., None]
            img = img * (1 - cover) + background * cover
        frames[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames


def render_frames(name: str) -> np.ndarray:
    """The frames of clip ``name`` exactly as they go to the encoder."""
    return draw(clip(name))


def write_clip(name: str, path: Path) -> Path:
    """Encode clip ``name`` to ``path`` (H.264). Written beside it first, then renamed, so a
    parallel run never sees half a file."""
    from pytest_phyjudge.testing import write_mp4

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    try:
        write_mp4(tmp, render_frames(name), fps=FPS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_all(out_dir: str | Path = DEFAULT_OUT, *, force: bool = False) -> list[Path]:
    """Write every clip to ``out_dir/<name>.mp4`` that is missing (all of them with ``force``);
    return the paths of all four."""
    out = Path(out_dir)
    paths = []
    for name in CLIP_NAMES:
        path = out / f"{name}.mp4"
        if force or not path.is_file() or path.stat().st_size == 0:
            write_clip(name, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--force", action="store_true", help="re-render clips that exist")
    args = parser.parse_args(argv)
    for name, path in zip(CLIP_NAMES, render_all(args.out, force=args.force), strict=True):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB  {clip(name).description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
