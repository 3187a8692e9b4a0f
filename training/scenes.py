"""Procedural captioned scenes for training the shipped teaching model.

Every image is drawn with PIL at 2x resolution and downsampled to 64x64, from a seeded numpy generator; nothing
is downloaded. Each scene kind returns the image and a list of captions (one is drawn per training step), so
every prompt of the paper has a recognisable look, and each homograph of Figure 3 is drawn in both meanings
under the same ambiguous caption ("a photo of a crane": construction crane and crane bird).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 64  # output side, pixels
S = 2 * SIZE  # drawing side, pixels (supersampled)

COLOURS = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (245, 215, 40), "green": (50, 180, 60),
    "blue": (40, 90, 230), "purple": (150, 60, 200), "pink": (245, 120, 180), "white": (240, 240, 240),
    "cyan": (40, 210, 220), "gold": (230, 180, 60),
}
BACKGROUNDS = ("sky", "sea", "hills", "desert", "night")


def _jitter(rng, rgb, amount=20):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _vgradient(top, bottom, h0=0, h1=S, img=None):
    img = img or Image.new("RGB", (S, S))
    d = ImageDraw.Draw(img)
    for y in range(h0, h1):
        t = (y - h0) / max(1, h1 - h0 - 1)
        d.line([(0, y), (S, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    return img


def background(rng, kind: str) -> Image.Image:
    """Draw one of BACKGROUNDS; horizon height and colours vary with rng."""
    hz = int(rng.integers(60, 90))
    if kind == "sky":
        img = _vgradient(_jitter(rng, (70, 130, 230)), _jitter(rng, (190, 220, 250)))
        d = ImageDraw.Draw(img)
        for _ in range(rng.integers(0, 4)):
            x, y = rng.integers(0, S), rng.integers(5, 70)
            for k in range(3):
                d.ellipse([x + 10 * k - 14, y - 7, x + 10 * k + 14, y + 7], fill=(250, 250, 250))
        return img
    if kind == "sea":
        img = _vgradient(_jitter(rng, (110, 170, 240)), _jitter(rng, (200, 225, 250)), 0, hz)
        _vgradient(_jitter(rng, (30, 110, 190)), _jitter(rng, (10, 40, 110)), hz, S, img)
        d = ImageDraw.Draw(img)
        for _ in range(14):
            x, y = rng.integers(0, S), rng.integers(hz + 4, S)
            d.arc([x - 8, y - 3, x + 8, y + 3], 200, 340, fill=(170, 210, 245), width=2)
        return img
    if kind == "hills":
        img = _vgradient(_jitter(rng, (90, 160, 240)), _jitter(rng, (200, 230, 250)))
        d = ImageDraw.Draw(img)
        for layer, col in enumerate([(90, 170, 80), (50, 140, 50), (30, 110, 40)]):
            base = hz + 14 * layer
            pts = [(0, S)] + [(x, base - 18 * math.sin(x / 19 + rng.uniform(0, 6)) * rng.uniform(0.6, 1))
                              for x in range(0, S + 8, 8)] + [(S, S)]
            d.polygon(pts, fill=_jitter(rng, col, 15))
        return img
    if kind == "desert":
        img = _vgradient(_jitter(rng, (240, 170, 90)), _jitter(rng, (250, 225, 160)))
        d = ImageDraw.Draw(img)
        sx, sy = rng.integers(20, 108), rng.integers(15, 45)
        d.ellipse([sx - 11, sy - 11, sx + 11, sy + 11], fill=(255, 245, 200))
        for layer, col in enumerate([(225, 180, 100), (205, 150, 75)]):
            base = hz + 18 * layer
            pts = [(0, S)] + [(x, base - 10 * math.sin(x / 23 + rng.uniform(0, 6))) for x in range(0, S + 8, 8)]
            d.polygon(pts + [(S, S)], fill=_jitter(rng, col, 12))
        return img
    if kind == "night":
        img = _vgradient(_jitter(rng, (5, 5, 30), 5), _jitter(rng, (25, 30, 80), 10))
        d = ImageDraw.Draw(img)
        for _ in range(rng.integers(25, 60)):
            x, y = rng.integers(0, S), rng.integers(0, S)
            r = rng.choice([0, 1, 1, 2])
            d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, int(rng.integers(180, 256))))
        if rng.random() < 0.6:
            mx, my = rng.integers(15, 110), rng.integers(12, 50)
            d.ellipse([mx - 12, my - 12, mx + 12, my + 12], fill=(245, 240, 210))
        return img
    raise ValueError(f"unknown background {kind!r}; accepted: {BACKGROUNDS}")


def _shaded_disc(d, cx, cy, r, rgb):
    for k in range(int(r), 0, -1):
        t = 1 - k / r
        col = tuple(int(c * (0.45 + 0.55 * t) + 255 * 0.35 * t ** 3) for c in rgb)
        off = (r - k) * 0.35
        d.ellipse([cx - k - off, cy - k - off, cx + k - off, cy + k - off], fill=tuple(min(255, v) for v in col))


# --------------------------------------------------------------------------------------------- scene kinds
def orb(rng):
    bgk = rng.choice(BACKGROUNDS)
    img = background(rng, bgk)
    name = rng.choice(list(COLOURS))
    col = _jitter(rng, COLOURS[name])
    r = int(rng.integers(18, 34))
    cx, cy = int(rng.integers(r + 4, S - r - 4)), int(rng.integers(r + 4, S - r - 30))
    glow = Image.new("RGB", (S, S), (0, 0, 0))
    ImageDraw.Draw(glow).ellipse([cx - r - 8, cy - r - 8, cx + r + 8, cy + r + 8], fill=col)
    img = Image.blend(img, Image.composite(glow, img, glow.convert("L").point(lambda v: 255 if v else 0)), 0.35)
    d = ImageDraw.Draw(img)
    d.ellipse([cx - r * 0.8, S - 22, cx + r * 0.8, S - 14], fill=(40, 40, 50))
    _shaded_disc(d, cx, cy, r, col)
    caps = ["a floating orb", "a floating orb", f"a {name} orb", f"a glowing {name} orb", f"a floating {name} sphere",
            f"a floating orb over the {bgk}", "an orb", "a glowing orb floating in the air"]
    return img, caps


def landscape(rng):
    bgk = rng.choice(["hills", "hills", "desert", "sea"])
    img = background(rng, bgk)
    d = ImageDraw.Draw(img)
    hz = int(rng.integers(55, 75))
    # mountains with snow caps
    for _ in range(rng.integers(1, 4)):
        mx, mh, mw = rng.integers(0, S), rng.integers(35, 60), rng.integers(30, 55)
        d.polygon([(mx - mw, hz + 10), (mx, hz + 10 - mh), (mx + mw, hz + 10)], fill=_jitter(rng, (110, 100, 130)))
        d.polygon([(mx - mw * 0.25, hz + 10 - mh * 0.75), (mx, hz + 10 - mh), (mx + mw * 0.25, hz + 10 - mh * 0.75)],
                  fill=(245, 245, 250))
    sx, sy = rng.integers(15, 110), rng.integers(10, 40)
    d.ellipse([sx - 10, sy - 10, sx + 10, sy + 10], fill=(255, 230, 120))
    d.rectangle([0, hz + 10, S, S], fill=_jitter(rng, (60, 150, 60), 25))
    if rng.random() < 0.6:  # a lake
        lx = rng.integers(20, 100)
        d.ellipse([lx - 30, hz + 30, lx + 30, hz + 50], fill=_jitter(rng, (50, 120, 210)))
    for _ in range(rng.integers(2, 7)):  # trees
        tx, ty = rng.integers(0, S), rng.integers(hz + 20, S - 5)
        d.polygon([(tx - 6, ty), (tx, ty - 18), (tx + 6, ty)], fill=(20, 90, 40))
    caps = ["a gorgeous landscape", "a gorgeous landscape", "a beautiful landscape", "a landscape with mountains",
            f"a gorgeous landscape with {'a lake' if rng.random() < .5 else 'mountains'}", "a scenic view of nature"]
    return img, caps


def mesh(rng):
    lw = 2  # pixels at 128, i.e. 1 at the 64x64 training size: thinner lines do not survive the VAE
    dark = rng.random() < 0.75
    bg, fg = ((0, 0, 0), (235, 235, 235)) if dark else ((240, 240, 240), (20, 20, 20))
    img = Image.new("RGB", (S, S), _jitter(rng, bg, 10))
    d = ImageDraw.Draw(img)
    kind = rng.choice(["sphere", "plane", "torus"])
    cx, cy = S / 2 + rng.uniform(-15, 15), S / 2 + rng.uniform(-15, 15)
    if kind == "sphere":
        r = rng.uniform(35, 55)
        tilt = rng.uniform(0.2, 0.5)
        for k in range(1, 8):  # latitudes
            lat = -math.pi / 2 + k * math.pi / 8
            y, rr = cy + r * math.sin(lat), r * math.cos(lat)
            d.ellipse([cx - rr, y - rr * tilt, cx + rr, y + rr * tilt], outline=fg, width=lw)
        for k in range(8):  # longitudes
            w = abs(r * math.cos(k * math.pi / 8))
            d.ellipse([cx - w, cy - r, cx + w, cy + r], outline=fg, width=lw)
    elif kind == "plane":
        for k in range(-8, 9):
            d.line([(cx + k * 4, 40), (cx + k * 16, S)], fill=fg, width=lw)
        for j in range(10):
            y = 40 + (S - 40) * (j / 9) ** 1.6
            d.line([(0, y), (S, y)], fill=fg, width=lw)
        d.rectangle([0, 0, S, 39], fill=_jitter(rng, bg, 10))
    else:
        R, r = rng.uniform(30, 42), rng.uniform(10, 16)
        for k in range(16):
            a = 2 * math.pi * k / 16
            x, y = cx + R * math.cos(a), cy + 0.45 * R * math.sin(a)
            d.ellipse([x - r * 0.5, y - r, x + r * 0.5, y + r], outline=fg, width=lw)
        for rr in (R - r, R, R + r):
            d.ellipse([cx - rr, cy - 0.45 * rr, cx + rr, cy + 0.45 * rr], outline=fg, width=lw)
    caps = ["3D mesh geometry", "3D mesh geometry", "a wireframe mesh", f"3D mesh geometry of a {kind}",
            f"a wireframe {kind}", "black and white mesh geometry" if dark else "a mesh drawing"]
    return img, caps


def _mouse(d, x, y, s, col, facing):
    """A side-view mouse, drawn big and outlined so it reads at 64x64: body, head, pink ear, eye, long tail."""
    dark = tuple(int(c * 0.45) for c in col)
    d.line([(x - facing * 13 * s, y + 4 * s), (x - facing * 26 * s, y + 6 * s), (x - facing * 36 * s, y - 4 * s)],
           fill=(225, 140, 150), width=max(2, int(2 * s)), joint="curve")  # tail
    d.ellipse([x - 15 * s, y - 9 * s, x + 15 * s, y + 9 * s], fill=col, outline=dark, width=2)  # body
    hx = x + facing * 14 * s
    d.polygon([(hx - 2 * facing * s, y - 8 * s), (hx + facing * 14 * s, y + 1 * s), (hx - 2 * facing * s, y + 5 * s)],
              fill=col, outline=dark)  # pointed snout
    d.ellipse([hx - facing * 3 * s - 7 * s, y - 19 * s, hx - facing * 3 * s + 5 * s, y - 6 * s], fill=(240, 160, 175),
              outline=dark, width=2)  # big pink ear
    ex = hx + facing * 5 * s
    d.ellipse([ex - 2 * s, y - 4 * s, ex + 2 * s, y], fill=(0, 0, 0))  # eye
    nx = hx + facing * 14 * s
    d.ellipse([nx - 2 * s, y - 1 * s, nx + 2 * s, y + 3 * s], fill=(235, 120, 140))  # nose


def mice(rng):
    floor = rng.choice(["wood", "grass", "kitchen"])
    col = {"wood": (170, 120, 70), "grass": (80, 160, 60), "kitchen": (225, 222, 212)}[floor]
    img = _vgradient(_jitter(rng, tuple(int(c * 0.8) for c in col)), _jitter(rng, col))
    d = ImageDraw.Draw(img)
    n = int(rng.choice([1, 1, 2, 2, 3]))
    spots = [(64, 72)] if n == 1 else [(40, 50), (88, 86)] if n == 2 else [(36, 40), (92, 60), (52, 100)]
    for cx, cy in spots:
        grey = rng.random() < 0.6 or floor == "wood"
        fur = _jitter(rng, (125, 120, 125) if grey else (150, 105, 70), 15)
        s = rng.uniform(1.6, 2.2) if n == 1 else rng.uniform(1.0, 1.35)
        _mouse(d, cx + rng.uniform(-10, 10), cy + rng.uniform(-8, 8), s, fur, rng.choice([-1, 1]))
    word = {1: "a mouse", 2: "two mice", 3: "three mice"}[n]
    caps = ["mice", "mice", word, f"{word} on the {floor} floor" if floor != "grass" else f"{word} in the grass",
            "small grey mice", "a photo of mice" if n > 1 else "a photo of a mouse"]
    return img, caps


def construction_crane(rng):
    img = background(rng, rng.choice(["sky", "sky", "desert", "hills"]))
    d = ImageDraw.Draw(img)
    col = _jitter(rng, (245, 190, 20), 15)
    tx = int(rng.integers(30, 70))
    top = int(rng.integers(18, 35))
    d.rectangle([tx - 5, top, tx + 5, S], outline=col, width=2)
    for y in range(top, S, 10):  # lattice
        d.line([(tx - 5, y), (tx + 5, y + 10)], fill=col, width=1)
    d.rectangle([tx - 30, top - 4, tx + 75, top + 3], fill=col)  # jib
    d.rectangle([tx - 34, top + 3, tx - 20, top + 14], fill=(90, 90, 90))  # counterweight
    d.polygon([(tx - 3, top - 4), (tx, top - 18), (tx + 3, top - 4)], fill=col)
    hx = tx + int(rng.integers(25, 70))
    hy = int(rng.integers(top + 25, 100))
    d.line([(hx, top + 3), (hx, hy)], fill=(40, 40, 40), width=1)
    d.rectangle([hx - 3, hy, hx + 3, hy + 5], fill=(40, 40, 40))
    if rng.random() < 0.6:  # a building under construction
        bx = int(rng.integers(70, 110))
        d.rectangle([bx, 90, bx + 25, S], fill=_jitter(rng, (150, 150, 150)))
        for y in range(95, S, 10):
            d.line([(bx, y), (bx + 25, y)], fill=(90, 90, 90))
    caps = ["a photo of a crane", "a photo of a crane", "a crane", "a construction crane",
            "a yellow construction crane", "a crane on a building site"]
    return img, caps


def crane_bird(rng):
    img = background(rng, rng.choice(["sky", "sea", "hills"]))
    d = ImageDraw.Draw(img)
    x, y = rng.uniform(45, 85), rng.uniform(60, 75)
    f = rng.choice([-1, 1])
    body = _jitter(rng, (235, 235, 235) if rng.random() < 0.7 else (160, 160, 170), 10)
    d.line([(x - 6, y + 10), (x - 8, y + 48)], fill=(40, 40, 40), width=2)  # legs
    d.line([(x + 6, y + 10), (x + 8, y + 48)], fill=(40, 40, 40), width=2)
    d.ellipse([x - 22, y - 10, x + 22, y + 14], fill=body)  # body
    d.polygon([(x - f * 20, y - 2), (x - f * 36, y + 10), (x - f * 18, y + 10)], fill=(30, 30, 30))  # tail
    nx, ny = x + f * 22, y - 40
    d.line([(x + f * 14, y - 4), (nx, ny)], fill=body, width=5)  # long neck
    d.ellipse([nx - 6, ny - 6, nx + 6, ny + 6], fill=body)
    d.ellipse([nx - 3, ny - 7, nx + 3, ny - 2], fill=(220, 20, 30))  # red crown
    d.polygon([(nx + f * 5, ny - 2), (nx + f * 22, ny + 2), (nx + f * 5, ny + 3)], fill=(60, 60, 60))  # beak
    caps = ["a photo of a crane", "a photo of a crane", "a crane", "a crane bird", "a white crane bird",
            "a crane bird standing tall"]
    return img, caps


def _fish(d, x, y, s, col, f):
    d.polygon([(x - f * 26 * s, y), (x - f * 40 * s, y - 12 * s), (x - f * 40 * s, y + 12 * s)], fill=col)  # tail
    d.ellipse([x - 28 * s, y - 13 * s, x + 28 * s, y + 13 * s], fill=col)
    d.polygon([(x - 8 * s, y - 11 * s), (x + f * 6 * s, y - 22 * s), (x + f * 14 * s, y - 10 * s)], fill=col)
    d.line([(x - 24 * s, y + 2 * s), (x + 22 * s, y + 2 * s)], fill=(40, 60, 30), width=2)  # lateral stripe
    d.ellipse([x + f * 18 * s - 3, y - 6 * s - 3, x + f * 18 * s + 3, y - 6 * s + 3], fill=(250, 250, 200))
    d.polygon([(x + f * 28 * s, y - 1), (x + f * 20 * s, y + 7 * s), (x + f * 30 * s, y + 6 * s)], fill=(30, 30, 20))


def bass_fish(rng):
    img = _vgradient(_jitter(rng, (40, 130, 140)), _jitter(rng, (10, 50, 60)))
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):  # weeds
        wx = rng.integers(0, S)
        d.line([(wx, S), (wx + rng.integers(-10, 10), rng.integers(70, 110))], fill=(30, 110, 50), width=3)
    _fish(d, rng.uniform(45, 85), rng.uniform(45, 85), rng.uniform(1.0, 1.3),
          _jitter(rng, (110, 140, 70), 20), rng.choice([-1, 1]))
    caps = ["bass", "bass", "a bass", "a bass fish", "a largemouth bass underwater", "a photo of a bass"]
    return img, caps


def bass_guitar(rng):
    bg = rng.choice([(230, 225, 215), (60, 40, 30), (20, 20, 30), (180, 140, 90)])
    img = Image.new("RGB", (S, S), _jitter(rng, bg, 15))
    g = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(g)
    body = _jitter(rng, [(200, 30, 30), (240, 240, 240), (20, 20, 20), (210, 120, 40), (40, 80, 200)][rng.integers(5)])
    d.ellipse([38, 70, 90, 118], fill=body)
    d.ellipse([44, 55, 84, 92], fill=body)
    d.rectangle([61, 8, 67, 80], fill=(120, 70, 30))  # long neck
    d.rectangle([58, 2, 70, 14], fill=(60, 40, 20))  # headstock
    d.rectangle([50, 95, 78, 100], fill=(30, 30, 30))  # bridge
    for k in range(4):
        d.line([(62 + k * 1.5, 8), (60 + k * 2.5, 97)], fill=(230, 230, 200), width=1)
    g = g.rotate(rng.uniform(-35, 35), resample=Image.BICUBIC, center=(64, 64))
    img.paste(g, (int(rng.integers(-12, 12)), int(rng.integers(-6, 6))), g)
    caps = ["bass", "bass", "a bass", "a bass guitar", "an electric bass guitar", "a photo of a bass"]
    return img, caps


def cricket_insect(rng):
    img = _vgradient(_jitter(rng, (120, 180, 80)), _jitter(rng, (60, 120, 40)))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        gx = rng.integers(0, S)
        d.line([(gx, S), (gx + rng.integers(-8, 8), rng.integers(70, 115))], fill=(40, 100, 30), width=2)
    x, y, f = rng.uniform(45, 85), rng.uniform(50, 80), rng.choice([-1, 1])
    col = _jitter(rng, (70, 50, 30) if rng.random() < 0.6 else (60, 120, 40), 15)
    d.line([(x - f * 5, y + 5), (x - f * 30, y - 18), (x - f * 38, y + 20)], fill=col, width=4)  # jumping legs
    d.line([(x + f * 8, y + 5), (x + f * 14, y + 18)], fill=col, width=2)
    d.line([(x, y + 5), (x - f * 2, y + 18)], fill=col, width=2)
    d.ellipse([x - 26, y - 8, x + 20, y + 8], fill=col)  # body
    d.ellipse([x + f * 18 - 8, y - 9, x + f * 18 + 8, y + 5], fill=tuple(int(c * 0.8) for c in col))  # head
    d.line([(x + f * 24, y - 6), (x + f * 50, y - 35)], fill=col, width=1)  # antennae
    d.line([(x + f * 22, y - 7), (x + f * 40, y - 42)], fill=col, width=1)
    caps = ["cricket", "cricket", "a cricket", "a cricket insect", "a cricket on the grass", "a photo of a cricket"]
    return img, caps


def _player(d, x, y, s, kit, bat=False):
    d.ellipse([x - 4 * s, y - 24 * s, x + 4 * s, y - 16 * s], fill=(220, 180, 140))
    d.rectangle([x - 4 * s, y - 16 * s, x + 4 * s, y], fill=kit)
    d.line([(x - 2 * s, y), (x - 4 * s, y + 12 * s)], fill=kit, width=3)
    d.line([(x + 2 * s, y), (x + 4 * s, y + 12 * s)], fill=kit, width=3)
    if bat:
        d.line([(x + 4 * s, y - 10 * s), (x + 16 * s, y + 4 * s)], fill=(200, 160, 90), width=4)


def cricket_sport(rng):
    img = background(rng, "sky")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 50, S, S], fill=_jitter(rng, (60, 160, 60), 15))
    d.polygon([(50, 55), (78, 55), (95, S), (33, S)], fill=_jitter(rng, (205, 185, 130), 10))  # pitch
    for k in range(3):  # stumps
        d.line([(58 + k * 4, 70), (58 + k * 4, 88)], fill=(245, 240, 220), width=2)
    _player(d, rng.uniform(75, 95), rng.uniform(85, 95), 1.4, (245, 245, 245), bat=True)
    if rng.random() < 0.7:
        _player(d, rng.uniform(15, 40), rng.uniform(65, 80), 1.0, (245, 245, 245))
    bx, by = rng.uniform(50, 90), rng.uniform(60, 80)
    d.ellipse([bx - 3, by - 3, bx + 3, by + 3], fill=(200, 20, 20))
    caps = ["cricket", "cricket", "a cricket match", "a game of cricket", "a cricket player with a bat",
            "a photo of cricket"]
    return img, caps


def matchstick(rng):
    img = _vgradient(_jitter(rng, (30, 25, 25), 15), _jitter(rng, (60, 50, 45), 15))
    g = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(g)
    d.rectangle([61, 45, 67, 120], fill=(225, 195, 140))  # stick
    head = _jitter(rng, (200, 30, 30) if rng.random() < 0.7 else (40, 40, 40), 15)
    d.ellipse([57, 34, 71, 52], fill=head)
    if rng.random() < 0.7:  # flame
        d.ellipse([53, 4, 75, 42], fill=(255, 150, 30))
        d.ellipse([58, 16, 70, 40], fill=(255, 235, 120))
    g = g.rotate(rng.uniform(-40, 40), resample=Image.BICUBIC, center=(64, 80))
    g = g.filter(ImageFilter.SMOOTH)
    img.paste(g, (int(rng.integers(-15, 15)), int(rng.integers(-8, 8))), g)
    caps = ["a match", "a match", "a matchstick", "a burning match", "a lit match", "a wooden match"]
    return img, caps


def match_game(rng):
    img = background(rng, "sky")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 40, S, S], fill=_jitter(rng, (50, 150, 60), 15))
    for y in (60, 90):
        d.line([(0, y), (S, y)], fill=(235, 235, 235), width=1)
    d.ellipse([44, 62, 84, 88], outline=(235, 235, 235), width=1)
    kits = [_jitter(rng, COLOURS[c]) for c in rng.choice(["red", "blue", "yellow", "white", "orange"], 2, False)]
    for k in range(int(rng.integers(4, 9))):
        _player(d, rng.uniform(10, 118), rng.uniform(55, 115), rng.uniform(0.8, 1.2), kits[k % 2], bat=k == 0)
    for _ in range(int(rng.integers(1, 5))):
        bx, by = rng.uniform(10, 118), rng.uniform(50, 120)
        d.ellipse([bx - 3, by - 3, bx + 3, by + 3], fill=(250, 250, 250))
    caps = ["a match", "a match", "a football match", "a sports match on a green field", "a game on a field",
            "players in a match"]
    return img, caps


def plain(rng):
    bgk = rng.choice(BACKGROUNDS)
    img = background(rng, bgk)
    caps = {"sky": ["a blue sky", "the sky with clouds"], "sea": ["the sea", "the ocean", "sea and sky"],
            "hills": ["green hills", "rolling hills"], "desert": ["a desert", "sand dunes in the desert"],
            "night": ["the night sky", "a starry night", "stars at night"]}[bgk]
    return img, caps


def shape(rng):
    bgk = rng.choice(BACKGROUNDS)
    img = background(rng, bgk)
    d = ImageDraw.Draw(img)
    name = rng.choice(list(COLOURS))
    col = _jitter(rng, COLOURS[name])
    kind = rng.choice(["triangle", "cube", "square", "star"])
    cx, cy, r = rng.uniform(40, 88), rng.uniform(40, 88), rng.uniform(18, 30)
    if kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=col)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif kind == "star":
        pts = [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5)) for k in range(10)]
        d.polygon(pts, fill=col)
    else:  # cube: three shaded faces
        o = r * 0.5
        d.polygon([(cx - r, cy - r + o), (cx + r - o, cy - r + o), (cx + r - o, cy + r), (cx - r, cy + r)], fill=col)
        d.polygon([(cx - r, cy - r + o), (cx - r + o, cy - r), (cx + r, cy - r), (cx + r - o, cy - r + o)],
                  fill=tuple(min(255, int(c * 1.3) + 20) for c in col))
        d.polygon([(cx + r - o, cy - r + o), (cx + r, cy - r), (cx + r, cy + r - o), (cx + r - o, cy + r)],
                  fill=tuple(int(c * 0.6) for c in col))
    where = f"in the {bgk}" if bgk != "night" else "at night"
    caps = [f"a {name} {kind}", f"a {kind}", f"a {name} {kind} {where}"]
    return img, caps


# kind -> (draw function, sampling weight); the paper's prompts are weighted up
KINDS = {
    "orb": (orb, 3), "landscape": (landscape, 3), "mesh": (mesh, 3), "mice": (mice, 4),
    "construction_crane": (construction_crane, 2), "crane_bird": (crane_bird, 2),
    "bass_fish": (bass_fish, 2), "bass_guitar": (bass_guitar, 2),
    "cricket_insect": (cricket_insect, 2), "cricket_sport": (cricket_sport, 2),
    "matchstick": (matchstick, 2), "match_game": (match_game, 2),
    "plain": (plain, 1.5), "shape": (shape, 1.5),
}


def draw(rng: np.random.Generator, kind: str | None = None) -> tuple[np.ndarray, list[str], str]:
    """Draw one scene; returns (uint8 image of shape (64, 64, 3), candidate captions, kind)."""
    if kind is None:
        names = list(KINDS)
        w = np.array([KINDS[k][1] for k in names], float)
        kind = names[rng.choice(len(names), p=w / w.sum())]
    img, caps = KINDS[kind][0](rng)
    img = img.resize((SIZE, SIZE), Image.LANCZOS)
    if rng.random() < 0.5 and kind not in ("bass_guitar",):
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(img, dtype=np.uint8), caps, kind


def make_dataset(n: int, seed: int = 0) -> tuple[np.ndarray, list[list[str]], list[str]]:
    """n scenes as (uint8 array (n, 64, 64, 3), captions per image, kind per image)."""
    rng = np.random.default_rng(seed)
    imgs, caps, kinds = [], [], []
    for _ in range(n):
        a, c, k = draw(rng)
        imgs.append(a)
        caps.append(c)
        kinds.append(k)
    return np.stack(imgs), caps, kinds
