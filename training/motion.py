"""Procedural captioned clips for training the shipped motion adapter (training/train_motion.py).

Each clip is FRAMES frames of 64x64, drawn with PIL at 2x and downsampled like training/scenes.py, from a seeded
numpy generator; nothing is downloaded. The kinds are the paper's prompts set in motion: an orb drifting and bobbing
across the frame, the sun rising over hills behind mountains, a wireframe mesh turning, waves rolling over the sea,
mice running across the floor. Backgrounds, drawing helpers and captions come from scenes.py, so every caption is one
the shipped image model was trained on (and tokenises with its tokenizer). Speeds are drawn so motion is plain to
see in 16 frames: an orb crosses 30-60% of the frame (less for the biggest, which must stay inside it), a mouse
35-70%, the sun rises 20-35%.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

import scenes
from scenes import COLOURS, S, SIZE, _jitter, _mouse, _shaded_disc, _vgradient, background

FRAMES = 16  # frames per clip: AnimateDiff's training window


def _frames(n: int = FRAMES) -> np.ndarray:
    """Clip time of each frame, 0..1."""
    return np.linspace(0.0, 1.0, n)


# ------------------------------------------------------------------------------------------------ clip kinds
def orb(rng, n=FRAMES):
    """scenes.orb drifting sideways (30-60% of the frame in a clip) and bobbing up and down, its glow and shadow
    following it."""
    bgk = rng.choice(scenes.BACKGROUNDS)
    bg = background(rng, bgk)
    name = rng.choice(list(COLOURS))
    col = _jitter(rng, COLOURS[name])
    r = int(rng.integers(16, 28))
    travel = min(rng.uniform(0.3, 0.6) * S, S - 2 * (r + 4) - 1) * rng.choice([-1, 1])
    x0 = rng.uniform(r + 4, S - r - 4 - abs(travel)) + (abs(travel) if travel < 0 else 0)
    y0 = rng.uniform(r + 12, S - r - 36)
    drift_y = rng.uniform(-12, 12)
    bob, period, phase = rng.uniform(4, 10), rng.uniform(0.5, 1.0), rng.uniform(0, 2 * math.pi)
    out = []
    for t in _frames(n):
        cx = x0 + travel * t
        cy = y0 + drift_y * t + bob * math.sin(2 * math.pi * t / period + phase)
        glow = Image.new("RGB", (S, S), (0, 0, 0))
        ImageDraw.Draw(glow).ellipse([cx - r - 8, cy - r - 8, cx + r + 8, cy + r + 8], fill=col)
        img = Image.blend(bg, Image.composite(glow, bg, glow.convert("L").point(lambda v: 255 if v else 0)), 0.35)
        d = ImageDraw.Draw(img)
        d.ellipse([cx - r * 0.8, S - 22, cx + r * 0.8, S - 14], fill=(40, 40, 50))
        _shaded_disc(d, cx, cy, r, col)
        out.append(img)
    caps = ["a floating orb", "a floating orb", f"a {name} orb", f"a glowing {name} orb", f"a floating {name} sphere",
            f"a floating orb over the {bgk}", "an orb", "a glowing orb floating in the air"]
    return out, caps


def sunrise(rng, n=FRAMES):
    """scenes.landscape at dawn: the sun rises from behind the mountains (20-35% of the frame in a clip) while the
    sky brightens."""
    dawn_top, dawn_low = _jitter(rng, (40, 60, 120)), _jitter(rng, (240, 150, 90))
    day_top, day_low = _jitter(rng, (90, 160, 240)), _jitter(rng, (200, 230, 250))
    hz = int(rng.integers(55, 75))
    mountains = []
    for _ in range(rng.integers(1, 4)):
        mx, mh, mw = rng.integers(0, S), rng.integers(35, 60), rng.integers(30, 55)
        mountains.append((mx, mh, mw, _jitter(rng, (110, 100, 130))))
    ground = _jitter(rng, (60, 150, 60), 25)
    lake = (rng.integers(20, 100), _jitter(rng, (50, 120, 210))) if rng.random() < 0.6 else None
    trees = [(rng.integers(0, S), rng.integers(hz + 20, S - 5)) for _ in range(rng.integers(2, 7))]
    sx = rng.uniform(20, 108)
    rise = rng.uniform(0.2, 0.35) * S
    y_start = hz + 12
    out = []
    for t in _frames(n):
        mix = min(1.0, 0.2 + t)
        top = tuple(int(a + (b - a) * mix) for a, b in zip(dawn_top, day_top))
        low = tuple(int(a + (b - a) * mix) for a, b in zip(dawn_low, day_low))
        img = _vgradient(top, low)
        d = ImageDraw.Draw(img)
        sy = y_start - rise * t
        d.ellipse([sx - 11, sy - 11, sx + 11, sy + 11], fill=(255, 230, 120))
        for mx, mh, mw, col in mountains:
            d.polygon([(mx - mw, hz + 10), (mx, hz + 10 - mh), (mx + mw, hz + 10)], fill=col)
            d.polygon([(mx - mw * 0.25, hz + 10 - mh * 0.75), (mx, hz + 10 - mh),
                       (mx + mw * 0.25, hz + 10 - mh * 0.75)], fill=(245, 245, 250))
        d.rectangle([0, hz + 10, S, S], fill=ground)
        if lake is not None:
            d.ellipse([lake[0] - 30, hz + 30, lake[0] + 30, hz + 50], fill=lake[1])
        for tx, ty in trees:
            d.polygon([(tx - 6, ty), (tx, ty - 18), (tx + 6, ty)], fill=(20, 90, 40))
        out.append(img)
    caps = ["a gorgeous landscape", "a gorgeous landscape", "a beautiful landscape", "a landscape with mountains",
            "a gorgeous landscape with mountains", "a scenic view of nature"]
    return out, caps


def mesh(rng, n=FRAMES):
    """scenes.mesh turning: a wireframe sphere spins about its axis, a torus turns in its plane, a grid plane
    scrolls towards the viewer; a quarter to half a turn of the pattern's period in a clip."""
    lw = 2
    dark = rng.random() < 0.75
    bg, fg = ((0, 0, 0), (235, 235, 235)) if dark else ((240, 240, 240), (20, 20, 20))
    bgc = _jitter(rng, bg, 10)
    kind = rng.choice(["sphere", "plane", "torus"])
    cx, cy = S / 2 + rng.uniform(-15, 15), S / 2 + rng.uniform(-15, 15)
    r, tilt = rng.uniform(35, 55), rng.uniform(0.2, 0.5)
    R, rt = rng.uniform(30, 42), rng.uniform(10, 16)
    turn = rng.uniform(0.5, 1.0) * rng.choice([-1, 1])  # in units of the pattern's period
    out = []
    for t in _frames(n):
        img = Image.new("RGB", (S, S), bgc)
        d = ImageDraw.Draw(img)
        if kind == "sphere":
            for k in range(1, 8):  # latitudes
                lat = -math.pi / 2 + k * math.pi / 8
                y, rr = cy + r * math.sin(lat), r * math.cos(lat)
                d.ellipse([cx - rr, y - rr * tilt, cx + rr, y + rr * tilt], outline=fg, width=lw)
            for k in range(8):  # longitudes, turned by up to half their spacing (pi / 8)
                w = abs(r * math.cos((k + 0.5 * turn * t) * math.pi / 8))
                d.ellipse([cx - w, cy - r, cx + w, cy + r], outline=fg, width=lw)
        elif kind == "plane":
            for k in range(-8, 9):
                d.line([(cx + k * 4, 40), (cx + k * 16, S)], fill=fg, width=lw)
            for j in range(10):
                u = ((j + abs(turn) * t) % 9) / 9
                y = 40 + (S - 40) * u ** 1.6
                d.line([(0, y), (S, y)], fill=fg, width=lw)
            d.rectangle([0, 0, S, 39], fill=bgc)
        else:
            for k in range(16):  # the tube's rings go round, up to half their spacing
                a = 2 * math.pi * (k + 0.5 * turn * t) / 16
                x, y = cx + R * math.cos(a), cy + 0.45 * R * math.sin(a)
                d.ellipse([x - rt * 0.5, y - rt, x + rt * 0.5, y + rt], outline=fg, width=lw)
            for rr in (R - rt, R, R + rt):
                d.ellipse([cx - rr, cy - 0.45 * rr, cx + rr, cy + 0.45 * rr], outline=fg, width=lw)
        out.append(img)
    caps = ["3D mesh geometry", "3D mesh geometry", "a wireframe mesh", f"3D mesh geometry of a {kind}",
            f"a wireframe {kind}", "black and white mesh geometry" if dark else "a mesh drawing"]
    return out, caps


def waves(rng, n=FRAMES):
    """scenes' sea: the wave crests roll sideways (15-30% of the frame in a clip) and bob."""
    hz = int(rng.integers(60, 90))
    sky = _vgradient(_jitter(rng, (110, 170, 240)), _jitter(rng, (200, 225, 250)), 0, hz)
    _vgradient(_jitter(rng, (30, 110, 190)), _jitter(rng, (10, 40, 110)), hz, S, sky)
    crests = [(rng.uniform(0, S), rng.uniform(hz + 4, S)) for _ in range(18)]
    speed = rng.uniform(0.15, 0.3) * S * rng.choice([-1, 1])
    phase = rng.uniform(0, 2 * math.pi)
    out = []
    for t in _frames(n):
        img = sky.copy()
        d = ImageDraw.Draw(img)
        for k, (x0, y0) in enumerate(crests):
            depth = (y0 - hz) / (S - hz)  # nearer crests move faster and are bigger
            x = (x0 + speed * t * (0.5 + depth)) % (S + 20) - 10
            y = y0 + 2 * math.sin(2 * math.pi * t + phase + k)
            w = 6 + 6 * depth
            d.arc([x - w, y - 3, x + w, y + 3], 200, 340, fill=(170, 210, 245), width=2)
        out.append(img)
    caps = ["the sea", "the ocean", "sea and sky"]
    return out, caps


def mice(rng, n=FRAMES):
    """scenes.mice running across the floor, each the way it faces, 35-70% of the frame in a clip, with a hop."""
    floor = rng.choice(["wood", "grass", "kitchen"])
    col = {"wood": (170, 120, 70), "grass": (80, 160, 60), "kitchen": (225, 222, 212)}[floor]
    bg = _vgradient(_jitter(rng, tuple(int(c * 0.8) for c in col)), _jitter(rng, col))
    k = int(rng.choice([1, 1, 2, 2, 3]))
    spots = [(64, 72)] if k == 1 else [(40, 50), (88, 86)] if k == 2 else [(36, 40), (92, 60), (52, 100)]
    facing = rng.choice([-1, 1])  # a group runs one way
    runners = []
    for cx, cy in spots:
        grey = rng.random() < 0.6 or floor == "wood"
        fur = _jitter(rng, (125, 120, 125) if grey else (150, 105, 70), 15)
        s = rng.uniform(1.6, 2.2) if k == 1 else rng.uniform(1.0, 1.35)
        run = rng.uniform(0.35, 0.7) * S
        runners.append((cx - facing * run / 2 + rng.uniform(-10, 10), cy + rng.uniform(-8, 8), s, fur, run,
                        rng.uniform(0, 2 * math.pi)))
    out = []
    for t in _frames(n):
        img = bg.copy()
        d = ImageDraw.Draw(img)
        for x0, y0, s, fur, run, ph in runners:
            _mouse(d, x0 + facing * run * t, y0 - 3 * abs(math.sin(4 * math.pi * t + ph)), s, fur, facing)
        out.append(img)
    word = {1: "a mouse", 2: "two mice", 3: "three mice"}[k]
    caps = ["mice", "mice", word, f"{word} on the {floor} floor" if floor != "grass" else f"{word} in the grass",
            "small grey mice", "a photo of mice" if k > 1 else "a photo of a mouse"]
    return out, caps


# kind -> (draw function, sampling weight)
KINDS = {"orb": (orb, 3), "sunrise": (sunrise, 2), "mesh": (mesh, 2), "waves": (waves, 1), "mice": (mice, 2)}


def draw(rng: np.random.Generator, kind: str | None = None, n: int = FRAMES
         ) -> tuple[np.ndarray, list[str], str]:
    """One clip: (uint8 frames of shape (n, 64, 64, 3), candidate captions, kind); half the clips mirrored."""
    if kind is None:
        names = list(KINDS)
        w = np.array([KINDS[k][1] for k in names], float)
        kind = names[rng.choice(len(names), p=w / w.sum())]
    frames, caps = KINDS[kind][0](rng, n)
    flip = rng.random() < 0.5
    arr = []
    for im in frames:
        im = im.resize((SIZE, SIZE), Image.LANCZOS)
        arr.append(np.asarray(im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im, dtype=np.uint8))
    return np.stack(arr), caps, kind


def make_dataset(n: int, seed: int = 0, frames: int = FRAMES) -> tuple[np.ndarray, list[list[str]], list[str]]:
    """n clips as (uint8 array (n, frames, 64, 64, 3), captions per clip, kind per clip)."""
    rng = np.random.default_rng(seed)
    clips, caps, kinds = [], [], []
    for _ in range(n):
        a, c, k = draw(rng, n=frames)
        clips.append(a)
        caps.append(c)
        kinds.append(k)
    return np.stack(clips), caps, kinds
