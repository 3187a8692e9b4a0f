"""Plots: the audio features and what they drive (notebook 07, `bendlab features --plot`), and the labelled image
grids of the figures (`ui.figures.make_figure`). Each takes an `ax` or returns its Figure, as libfmp's plots do.
"""

from __future__ import annotations

import math

import numpy as np

from .. import audio


def plot_features(feats: audio.Features, names=("rms",), param: np.ndarray | None = None,
                  param_label: str = "parameter", ax=None):
    """Selected features (each min-max normalised) and the resulting parameter curve against time (s).

    Returns the matplotlib Axes (a twin axis carries the parameter)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    t = feats.times
    for name in names:
        x = feats[name]
        span = x.max() - x.min()
        unit = audio.UNITS.get(audio.parse_feature(name).name, "")
        ax.plot(t, (x - x.min()) / span if span > 0 else x * 0, label=f"{name} ({unit or 'norm.'})", lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("feature (normalised)")
    ax.set_xlim(0, t[-1] + 1 / feats.fps)
    if param is not None:
        ax2 = ax.twinx()
        ax2.step(t, param, where="post", color="k", lw=1.5, label=param_label)
        ax2.set_ylabel(param_label)
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    return ax


def plot_curves(feats: audio.Features, mappings=(), names=None):
    """What will drive the picture, before any rendering: every feature of `names` (default `Features.table`)
    as a heat map (each row min-max normalised over the track), then one panel per mapping with its feature and
    the operator parameter it produces, against time (s). Returns the matplotlib Figure.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import matplotlib.pyplot as plt
    table = feats.table(names)
    fig, axes = plt.subplots(1 + len(mappings), 1, figsize=(10, 0.18 * len(table) + 1.2 + 2.2 * len(mappings)),
                             height_ratios=[0.18 * len(table) + 0.6] + [2.2] * len(mappings), squeeze=False,
                             layout="constrained")
    rows = []
    for x in table.values():
        span = x.max() - x.min()
        rows.append((x - x.min()) / span if span > 0 else x * 0)
    ax = axes[0, 0]
    ax.imshow(np.array(rows), aspect="auto", interpolation="nearest", cmap="magma",
              extent=(0, feats.n_frames / feats.fps, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)), list(table), fontsize=7)
    tempo = f"tempo {feats.tempo:.1f} BPM" if feats.tempo else "no beat found"
    ax.set_title(f"features per frame ({feats.fps:g} fps, each row normalised; {tempo})", fontsize=9)
    for k, m in enumerate(mappings):
        plot_features(feats, [m.feature], m.params(feats), param_label=f"{m.op} r (layer {m.layer})",
                      ax=axes[k + 1, 0])
    axes[-1, 0].set_xlabel("time (s)")
    return fig


def plot_panels(panels, ncols: int = 5, title: str | None = None, size: float = 1.9):
    """A matplotlib figure of labelled images (each panel `size` inches wide); returns the Figure."""
    import matplotlib.pyplot as plt
    n = len(panels)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.15) * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, img) in zip(axes.flat, panels):
        ax.imshow(np.asarray(img), interpolation="nearest")
        ax.set_title(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_flicker(curves: dict, fps: float, ax=None, title: str | None = None):
    """How much each frame of a video changes from the one before (8-bit levels), one line per video: `curves`
    maps a label to `video.quality.consecutive_diffs` of its frames at `fps` frames per second; each label gets its
    95th percentile (the smoothness an interpolated video shows). Returns the Axes.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.6), layout="constrained")
    for k, (label, d) in enumerate(curves.items()):
        d = np.asarray(d)
        ax.plot(np.arange(1, len(d) + 1) / fps, d, lw=1 if k else 0.8, color=None if k else "0.6",
                label=f"{label}: p95 {np.percentile(d, 95):.1f} levels")
    ax.set(xlabel="time (s)", ylabel="change from the frame before (levels)", title=title)
    ax.legend(fontsize=8)
    return ax


def plot_seams(seams, windows, fps: float | None = None, ax=None, title: str | None = None):
    """Whether a video's window seams show: the change of each frame from the one before (8-bit levels), the
    windows shaded in turn and their overlaps darker, the pairs at a seam marked, and the means across the seams
    and within the windows as lines; `seams` is `video.quality.seams` of the frames, `windows` the (start, end)
    pairs it was given; against time (s) with `fps`, else frames. Returns the Axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.6), layout="constrained")
    scale = 1 / fps if fps else 1
    n = len(seams.diffs) + 1
    for j, (s, e) in enumerate(windows):
        if s < n:
            ax.axvspan(s * scale, min(e, n) * scale, color=f"C{j % 2}", alpha=0.08, lw=0)
    for (_, e), (s, _) in zip(windows, windows[1:]):
        if s < n:
            ax.axvspan(s * scale, min(e, n) * scale, color="0.5", alpha=0.2, lw=0)
    x = (np.arange(len(seams.diffs)) + 1) * scale  # pair (i, i + 1) drawn at frame i + 1
    ax.plot(x, seams.diffs, color="k", lw=0.8)
    if len(seams.seam):
        ax.plot(x[seams.seam], seams.diffs[seams.seam], "o", color="C3", ms=4,
                label=f"across a seam: {seams.across:.1f} levels")
        ax.axhline(seams.across, color="C3", lw=1, ls="--")
    if len(seams.within):
        ax.axhline(seams.inside, color="C0", lw=1, ls="--", label=f"within a window: {seams.inside:.1f} levels")
    ax.set(xlabel="time (s)" if fps else "frame", ylabel="change from the frame before (levels)", title=title)
    ax.legend(fontsize=8, loc="upper right")
    return ax


def plot_drift(drifts: dict, ax=None):
    """How far img2img chains drift from their first frame: the lightness change (%) of each chain per frame
    (solid) and its SSIM to frame 0 (dashed, right axis), one colour per chain; `drifts` maps a label to a
    `video.quality.Drift`. Returns the Axes.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    ax2 = ax.twinx()
    for k, (label, d) in enumerate(drifts.items()):
        color = f"C{k}"
        ax.plot(100 * d.change(), color=color, lw=1.5, label=f"{label}: L* change")
        ax2.plot(d.ssim, color=color, lw=1, ls="--", label=f"{label}: SSIM")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame")
    ax.set_ylabel("L* change from frame 0 (%)")
    ax2.set_ylabel("SSIM to frame 0")
    ax2.set_ylim(0, 1.05)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    return ax


def plot_session(s, ax=None):
    """A recorded live session's automation (`session.read_session`): each mapping's parameter against the audio
    clock (solid), its low and high as they were set (dotted), and the prompt changes (vertical lines). Returns
    the Axes.

    Notebook: notebooks/08_live.ipynb
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.5), layout="constrained")
    for j, m in enumerate(s.meta["mappings"]):
        color = f"C{j}"
        ax.plot(s.times, s.params[j], color=color, lw=1.2, label=f"{j}: {m['op']} <- {m['feature']}")
        ax.plot(s.times, s.lows[j], color=color, lw=0.8, ls=":")
        ax.plot(s.times, s.highs[j], color=color, lw=0.8, ls=":")
    for t in s.times[1:][np.diff(s.prompt) != 0]:
        ax.axvline(t, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("time (s, audio clock)")
    ax.set_ylabel("parameter")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_strip(rows: dict, title: str | None = None, size: float = 1.6, axes=None):
    """Rows of labelled images: `rows` maps a row's label (written at its left) to its (panel title, image)
    pairs, one column per pair. axes: a (rows, columns) array of Axes to draw in, or None for a new Figure.
    Returns the Figure.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import matplotlib.pyplot as plt
    ncols = max(len(r) for r in rows.values())
    if axes is None:
        fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols + 0.5, (size + 0.3) * len(rows)
                                                            + (0.4 if title else 0)), squeeze=False,
                                 layout="constrained")
    fig = axes[0][0].figure
    for r, (label, panels) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(panels):
                ax.set_axis_off()
                continue
            name, img = panels[c]
            ax.imshow(np.asarray(img), interpolation="nearest")
            ax.set_title(name, fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------ insides (notebook 09)
def _mosaic(tiles: np.ndarray, gap: int = 1) -> np.ndarray:
    """(R, C, h, w) tiles as one (R h + gaps, C w + gaps) image, NaN (drawn blank) between tiles."""
    R, C, h, w = tiles.shape
    out = np.full((R * (h + gap) - gap, C * (w + gap) - gap), np.nan, dtype=np.float32)
    for r in range(R):
        for c in range(C):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[r, c]
    return out


def _axes_in(ax, figsize):
    """ax itself if it is an Axes; one Axes filling a Figure or SubFigure; a new Figure's Axes for None."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    if isinstance(ax, Axes):
        return ax
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    return ax.subplots()


def _ticks_at_tiles(ax, n: int, size: int, gap: int, labels, axis: str = "x", fontsize: int = 7) -> None:
    centres = [k * (size + gap) + (size - 1) / 2 for k in range(n)]
    (ax.set_xticks if axis == "x" else ax.set_yticks)(centres, [str(v) for v in labels], fontsize=fontsize)


def plot_feature_maps(maps: np.ndarray, ax=None, max_channels: int = 16, means: bool = False, title: str | None = None,
                      cmap: str = "viridis"):
    """A module's feature maps (C, h, w) (`bend.insides.feature_maps`) as a grid of its first `max_channels` channels,
    or with means=True of `max_channels` channel means (the C channels split into that many consecutive groups,
    each shown as its mean, so every channel counts), each tile scaled to its own range (its colours show where a
    channel is high, not how high), labelled with its channel(s). ax: an Axes, a Figure or SubFigure to fill, or
    None for a new Figure. Returns the Axes.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    C, h, w = maps.shape
    if means:
        groups = np.array_split(np.arange(C), min(max_channels, C))
        tiles = np.stack([maps[g].mean(0) for g in groups])
        names = [f"{g[0]}" if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups]
    else:
        tiles, names = maps[:max_channels], [str(c) for c in range(min(max_channels, C))]
    lo = tiles.min(axis=(1, 2), keepdims=True)
    span = tiles.max(axis=(1, 2), keepdims=True) - lo
    tiles = np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1), 0.5)
    n = len(tiles)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * cols, h, w), np.nan, dtype=np.float32)
    grid[:n] = tiles
    gap = max(1, h // 16)
    ax = _axes_in(ax, (1.0 * cols, 1.0 * rows + 0.3))
    ax.imshow(_mosaic(grid.reshape(rows, cols, h, w), gap), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    for k, name in enumerate(names):
        r, c = divmod(k, cols)
        ax.text(c * (w + gap) + 0.5, r * (h + gap) + 0.5, name, color="white", fontsize=5, va="top", ha="left",
                bbox=dict(facecolor="black", alpha=0.5, pad=0.5, linewidth=0))
    ax.set_xticks([])
    ax.set_yticks([])
    what = "channel means" if means else "channels"
    ax.set_title(title or f"{n} {what} of {C} ({h}x{w})", fontsize=8)
    return ax


def plot_latent_steps(lat: np.ndarray, layers=None, ax=None, title: str | None = None, cmap: str = "RdBu_r"):
    """The latent's 4 channels across the steps (`bend.insides.latent_steps`, (N + 1, 4, h, w)): one row per channel,
    one column per layer of `layers` (None: about 8 spread over 0..N), each row on one colour scale symmetric
    about 0 (its largest |value| over the columns shown), so a row shows how its channel forms. ax: an Axes, a
    Figure or SubFigure, or None for a new Figure. Returns the Axes.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    n = lat.shape[0] - 1
    layers = sorted(set(np.linspace(0, n, min(n + 1, 8)).round().astype(int).tolist())) if layers is None else \
        list(layers)
    tiles = lat[layers].transpose(1, 0, 2, 3)  # (channels, columns, h, w)
    scale = np.abs(tiles).max(axis=(1, 2, 3), keepdims=True)
    tiles = tiles / np.where(scale > 0, scale, 1)
    C, _, h, w = tiles.shape
    gap = max(1, h // 16)
    ax = _axes_in(ax, (0.9 * len(layers) + 0.6, 0.9 * C + 0.5))
    ax.imshow(_mosaic(tiles, gap), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    _ticks_at_tiles(ax, len(layers), w, gap, layers)
    _ticks_at_tiles(ax, C, h, gap, [f"ch {c}" for c in range(C)], "y")
    ax.set_xlabel("layer", fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title or f"the latent's channels over {n} steps (each row: its own +-scale)", fontsize=8)
    return ax


def plot_cross_attention(maps: dict, ax=None, image=None, vmax: float | None = None, title: str | None = None,
                         cmap: str = "magma"):
    """Cross-attention maps (`bend.insides.cross_attention`, {token: (h, w)}) side by side, one panel per token,
    labelled with it, on one colour scale 0..vmax (None: the largest value shown; pass the same vmax to compare
    two calls, say before and after a bend), after the rendered `image` when given. ax: an Axes, a Figure or
    SubFigure, or None for a new Figure. Returns the Axes.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    import matplotlib.cm
    import matplotlib.colors
    scale, gap = 8, 8  # each map pixel drawn 8 x 8 (the picture sits beside at 8 x the maps' grid), 8 px apart
    tiles = np.stack(list(maps.values()))
    h, w = tiles.shape[-2:]
    vmax = float(tiles.max()) if vmax is None else vmax
    big = np.kron(tiles / (vmax or 1), np.ones((1, scale, scale)))
    panels = list(matplotlib.colormaps[cmap](np.clip(big, 0, 1))[..., :3])
    labels = list(maps)
    if image is not None:  # the rendered picture first, at the panels' size
        img = np.asarray(image.resize((w * scale, h * scale)) if hasattr(image, "resize") else image, np.float32)
        panels, labels = [(img / 255 if img.max() > 1 else img)[..., :3]] + panels, ["image"] + labels
    H, W = h * scale, w * scale
    ax = _axes_in(ax, (0.9 * len(panels) + 0.4, 1.4))
    canvas = np.ones((H, len(panels) * (W + gap) - gap, 3), dtype=np.float32)
    for k, p in enumerate(panels):
        canvas[:, k * (W + gap):k * (W + gap) + W] = p
    ax.imshow(canvas, interpolation="nearest")
    _ticks_at_tiles(ax, len(panels), W, gap, labels)
    ax.set_yticks([])
    ax.tick_params(length=0)
    norm = matplotlib.colors.Normalize(0, vmax)
    ax.figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8, pad=0.01,
                       label="attention")
    ax.set_title(title or f"cross-attention per token ({h}x{w}; sums to 1 over the tokens)", fontsize=8)
    return ax


def plot_spectrograms(sounds, labels=None, axes=None, n_fft: int = 512, top_db: float = 80.0):
    """One log-magnitude spectrogram (dB, 0 at the loudest of all, down to -top_db) per `music.render.Sound`, side
    by side on a shared colour scale: time in seconds across, frequency in Hz up (linear to the Nyquist rate).
    Returns the axes. Notebook: notebooks/11_bending_music.ipynb"""
    import matplotlib.pyplot as plt
    import librosa
    mags = [np.abs(librosa.stft(s.samples.mean(0), n_fft=n_fft, hop_length=n_fft // 4)) for s in sounds]
    ref = max(float(m.max()) for m in mags) or 1.0
    if axes is None:
        _, axes = plt.subplots(1, len(sounds), figsize=(2.6 * len(sounds), 2.4), sharey=True, squeeze=False)
        axes = axes[0]
    for i, (s, m, ax) in enumerate(zip(sounds, mags, axes)):
        db = librosa.amplitude_to_db(m, ref=ref, top_db=top_db)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-top_db, vmax=0,
                  extent=(0, s.seconds, 0, s.sr / 2))
        ax.set_xlabel("s")
        if labels is not None:
            ax.set_title(labels[i], fontsize=9)
    axes[0].set_ylabel("Hz")
    return axes


def spectrogram_grid(sounds, labels, path) -> None:
    """`plot_spectrograms` written to `path` (PNG), the figure closed."""
    import matplotlib.pyplot as plt
    axes = plot_spectrograms(sounds, labels)
    fig = axes[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_soundtrack(curve: np.ndarray, fps: float, sound, frames: dict, label: str = "curve", music_curve=None,
                    axes=None):
    """One curve, sound and picture (a video with generated music, `video.soundtrack`): the shared curve per video
    frame (and, if given, the music bend's parameter from it), the music's spectrogram on the same time axis, and
    a few frames side by side, each labelled with its time. curve: one value per video frame at `fps`; sound: a
    `music.render.Sound`; frames: frame index -> image. axes: three Axes to draw in, or None for a new Figure.
    Returns the three Axes."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(8, 6.2), height_ratios=[1.2, 1.6, 1.6], layout="constrained")
    ax_curve, ax_spec, ax_frames = axes
    t = np.arange(len(curve) + 1) / fps
    ax_curve.stairs(curve, t, color="k", lw=1.5, label=f"{label} (frames)")
    if music_curve is not None:
        twin = ax_curve.twinx()
        twin.stairs(music_curve, t, color="tab:orange", lw=1, ls="--", label="music bend parameter")
        twin.set_ylabel("music", fontsize=8)
        twin.legend(loc="upper right", fontsize=7)
    ax_curve.set_xlim(0, max(t[-1], sound.seconds))
    ax_curve.set_ylabel("parameter", fontsize=8)
    ax_curve.legend(loc="upper left", fontsize=7)
    ax_curve.set_title("one curve drives the sound and the picture", fontsize=9)
    plot_spectrograms([sound], axes=[ax_spec])
    ax_spec.set_xlim(ax_curve.get_xlim())
    ax_spec.set_ylabel("Hz")
    idx = sorted(frames)
    tiles = [np.asarray(frames[i].convert("RGB") if hasattr(frames[i], "convert") else frames[i]) for i in idx]
    h, w = tiles[0].shape[:2]
    gap = max(1, w // 16)
    strip = np.full((h, len(tiles) * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        strip[:, k * (w + gap):k * (w + gap) + w] = tile[..., :3]
    ax_frames.imshow(strip, interpolation="nearest")
    _ticks_at_tiles(ax_frames, len(idx), w, gap, [f"{i / fps:.2f} s" for i in idx])
    ax_frames.set_yticks([])
    ax_frames.set_xlabel("frames at their times", fontsize=8)
    return axes
