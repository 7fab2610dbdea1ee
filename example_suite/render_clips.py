"""Render the example suite's four synthetic clips, deterministically, with numpy + imageio.

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

#: Frame size: both multiples of 16, so the H.264 encoder does not resize.
WIDTH, HEIGHT = 480, 272
FPS = 24
DURATION_S = 3.5
N_FRAMES = round(FPS * DURATION_S)

#: Scale of the scene and the physics it is drawn with.
PX_PER_M = 100.0
G = 9.81  # m/s^2
RADIUS = 16  # ball radius in pixels (0.16 m)

#: Scene layout: the back wall meets the floor at FLOOR_FAR_Y; the ball travels along the
#: floor at CONTACT_Y (the y where it touches the floor, half-way into the room).
FLOOR_FAR_Y = 168
CONTACT_Y = 236.0
#: The low wall of ``ball_through_wall``: it spans the whole floor from back to front.
WALL_X0, WALL_X1 = 250, 290
WALL_HEIGHT = 100

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
    x0, speed = 50.0, 1.1 * PX_PER_M
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
    # Thrown from 0.8 m at (1.5, 4.5) m/s; at 0.9 s, falling at 88 cm, it freezes for good.
    x0, h0, vx, vy, t_freeze = 50.0, 0.8, 1.5, 4.5, 0.9
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


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _background(floor: str, wall: bool) -> np.ndarray:
    """The static scene (float RGB): back wall, skirting board, floor, optional low wall."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    img = np.zeros((HEIGHT, WIDTH, 3))

    # Back wall: a soft vertical gradient.
    t = (yy / FLOOR_FAR_Y)[..., None]
    img[:] = (1 - t) * np.array([200.0, 209, 221]) + t * np.array([172.0, 182, 196])

    # Floor: depth 0 at the back edge, 1 at the bottom of the frame.
    depth = np.clip((yy - FLOOR_FAR_Y) / (HEIGHT - FLOOR_FAR_Y), 0, 1)[..., None]
    on_floor = yy >= FLOOR_FAR_Y
    rng = np.random.default_rng(7)
    if floor == "wood":
        floor_rgb = (1 - depth) * np.array([132.0, 98, 70]) + depth * np.array([182.0, 140, 98])
        # Planks run left-right; their seams get further apart towards the camera.
        seams = FLOOR_FAR_Y + (HEIGHT - FLOOR_FAR_Y) * (np.arange(1, 12) / 11) ** 1.35
        seam_dist = np.min(np.abs(yy[..., None] - seams), axis=-1)
        shade = 1 - 0.22 * np.clip(1.2 - seam_dist, 0, 1)
        # Grain: a gentle, static stripe pattern per plank.
        grain = 1 + 0.035 * np.sin(xx / 23.0 + 3 * np.sin(yy / 5.0))
        floor_rgb = floor_rgb * (shade * grain)[..., None]
        # Plank ends: short dark joints at fixed pseudo-random places.
        bounds = np.concatenate([[FLOOR_FAR_Y], seams])
        for top, bottom in zip(bounds[:-1], bounds[1:], strict=True):
            for x in rng.uniform(0, WIDTH, size=2):
                band = (yy >= top) & (yy < bottom) & (np.abs(xx - x) < 0.8)
                floor_rgb[band] *= 0.8
    else:
        # Rough concrete: coarse, static grain (2x2 blocks, so the encoder has less to store).
        grain = rng.normal(0, 1, size=(HEIGHT // 2, WIDTH // 2)).repeat(2, 0).repeat(2, 1)
        floor_rgb = (1 - depth) * np.array([112.0, 110, 106]) + depth * np.array([150.0, 147, 141])
        floor_rgb = floor_rgb * (1 + 0.09 * grain)[..., None]
        pebbles = rng.uniform(size=(HEIGHT, WIDTH)) < 0.004
        floor_rgb[pebbles] *= 0.7
    img = np.where(on_floor[..., None], floor_rgb, img)

    # Skirting board where the back wall meets the floor.
    skirting = (yy >= FLOOR_FAR_Y - 7) & (yy < FLOOR_FAR_Y)
    img[skirting] = np.array([226.0, 222, 214])
    img[(yy >= FLOOR_FAR_Y - 1) & (yy < FLOOR_FAR_Y)] = np.array([150.0, 146, 140])

    if wall:
        # Contact shadow of the low wall, cast to the right by the upper-left light.
        fade = np.clip(1 - (xx - WALL_X1) / 14.0, 0, 1) * ((xx >= WALL_X1) & on_floor)
        img *= (1 - 0.35 * fade)[..., None]
    # A light vignette so the frame does not look flat.
    r2 = ((xx - WIDTH / 2) / (WIDTH * 0.75)) ** 2 + ((yy - HEIGHT * 0.45) / (HEIGHT * 0.9)) ** 2
    img *= (1 - 0.25 * r2)[..., None]
    return img


def _wall_layer() -> tuple[np.ndarray, np.ndarray]:
    """The low wall as (rgb, mask): a lit top face over a front face of concrete blocks.
    It spans the floor from the back to the camera, so nothing on the floor can pass it."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rgb = np.zeros((HEIGHT, WIDTH, 3))
    inside = (xx >= WALL_X0) & (xx < WALL_X1)
    top = inside & (yy >= FLOOR_FAR_Y - WALL_HEIGHT) & (yy < HEIGHT - WALL_HEIGHT)
    front = inside & (yy >= HEIGHT - WALL_HEIGHT)
    t = ((yy - (FLOOR_FAR_Y - WALL_HEIGHT)) / (HEIGHT - FLOOR_FAR_Y))[..., None]
    rgb = np.where(top[..., None], (1 - t) * [196.0, 194, 188] + t * [214.0, 212, 206], rgb)
    # Front face: grey blocks 20 px long, 12 px high, offset every other course, with mortar.
    fy = yy - (HEIGHT - WALL_HEIGHT)
    course = np.floor(fy / 12.0)
    fx = xx - WALL_X0 + 10.0 * (course % 2)
    mortar = (np.mod(fy, 12.0) < 1.5) | (np.mod(fx, 20.0) < 1.5)
    block_rgb = np.where(mortar[..., None], [118.0, 116, 112], [152.0, 150, 145])
    rgb = np.where(front[..., None], block_rgb, rgb)
    # Darker edges so the wall reads as a solid block.
    edge = inside & ((xx < WALL_X0 + 2) | (xx >= WALL_X1 - 1))
    rgb[edge] *= 0.75
    rgb[inside & (np.abs(yy - (HEIGHT - WALL_HEIGHT)) < 1)] *= 0.7
    return rgb, (top | front)


def _draw_shadow(img: np.ndarray, state: BallState) -> None:
    """A soft elliptical shadow under the ball: smaller and fainter the higher the ball."""
    lift = min(state.height / (1.8 * PX_PER_M), 1.0)
    a = RADIUS * (1.15 - 0.45 * lift)
    b = a * 0.3
    opacity = 0.55 * (1 - 0.65 * lift)
    x0, x1 = int(state.x - a - 2), int(state.x + a + 3)
    y0, y1 = int(CONTACT_Y - b - 2), int(CONTACT_Y + b + 3)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, WIDTH), min(y1, HEIGHT)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    q = np.sqrt(((xx - state.x) / a) ** 2 + ((yy - CONTACT_Y) / b) ** 2)
    dark = opacity * _smoothstep(1.0, 0.35, q)
    img[y0:y1, x0:x1] *= (1 - dark)[..., None]


_LIGHT = np.array([-0.45, -0.7, 0.55]) / np.linalg.norm([-0.45, -0.7, 0.55])
_HALF = (_LIGHT + [0, 0, 1]) / np.linalg.norm(_LIGHT + [0, 0, 1])


def _draw_ball(img: np.ndarray, state: BallState) -> None:
    """An anti-aliased, lit sphere: diffuse shading, a specular highlight and a dark stripe
    (a seam) at angle ``spin``, so rolling and sliding look different."""
    cx, cy = state.x, state.y
    x0, x1 = max(int(cx - RADIUS - 2), 0), min(int(cx + RADIUS + 3), WIDTH)
    y0, y1 = max(int(cy - RADIUS - 2), 0), min(int(cy + RADIUS + 3), HEIGHT)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    dx, dy = xx - cx, yy - cy
    dist = np.hypot(dx, dy)
    alpha = np.clip(RADIUS + 0.5 - dist, 0.0, 1.0)
    nx, ny = dx / RADIUS, dy / RADIUS
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.0, 1.0))
    diffuse = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
    specular = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0.0, 1.0) ** 40
    seam = np.abs(nx * math.cos(state.spin) + ny * math.sin(state.spin))
    base = BALL_RGB * (1 - 0.5 * _smoothstep(0.16, 0.08, seam))[..., None]
    rgb = base * (0.3 + 0.85 * diffuse)[..., None] + 190.0 * specular[..., None]
    patch = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = patch * (1 - alpha[..., None]) + rgb * alpha[..., None]


def draw(c: Clip) -> np.ndarray:
    """The frames of a clip as uint8, shape (frames, HEIGHT, WIDTH, 3)."""
    background = _background(c.floor, c.wall)
    wall_rgb, wall_mask = _wall_layer() if c.wall else (None, None)
    frames = np.empty((len(c.states), HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i, state in enumerate(c.states):
        img = background.copy()
        _draw_shadow(img, state)
        _draw_ball(img, state)
        if wall_rgb is not None:
            # The wall is nearer the camera than the ball's path wherever they overlap.
            img[wall_mask] = wall_rgb[wall_mask]
        frames[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames


def render_frames(name: str) -> np.ndarray:
    """The frames of clip ``name`` exactly as they go to the encoder."""
    return draw(clip(name))


def write_clip(name: str, path: Path) -> Path:
    """Encode clip ``name`` to ``path`` (H.264). Written beside it first, then renamed, so a
    parallel run never sees half a file."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    try:
        iio.imwrite(tmp, render_frames(name), fps=FPS, codec="libx264", macro_block_size=16)
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--force", action="store_true", help="re-render clips that exist")
    args = parser.parse_args(argv)
    for path in render_all(args.out, force=args.force):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
