"""Plots: the audio features and what they drive (notebook 07, `bendlab features --plot`), and the labelled image
grids of the figures (`figures.make_figure`). Each takes an `ax` or returns its Figure, as libfmp's plots do.
"""

from __future__ import annotations

import math

import numpy as np

from . import audio


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


def plot_drift(drifts: dict, ax=None):
    """How far img2img chains drift from their first frame: the lightness change (%) of each chain per frame
    (solid) and its SSIM to frame 0 (dashed, right axis), one colour per chain; `drifts` maps a label to a
    `quality.Drift`. Returns the Axes.

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
