"""Images for the HTML reports, as ``data:`` URIs: score histograms, image thumbnails and the
shared PNG encoder of every report figure.

Figures are small line and bar plots, drawn at about the size they are shown; :func:`png_uri`
stores them as PNGs of at most ``PALETTE`` colours, a fifth of the bytes of the RGBA image
matplotlib writes and no visible difference, so a report page stays small. Histograms are drawn from
:func:`numpy.histogram` counts (never one artist per row), so a million-row report costs no
more than a small one. PNGs carry no software or date metadata: the same inputs give the same
bytes.
"""

from __future__ import annotations

import base64
import io
from typing import Any, cast

import numpy as np

__all__ = ["histogram_figure", "histogram_uri", "png_uri", "thumbnail_uris"]

BINS = 40
SIZE = (3.8, 2.5)  # inches at DPI: 380 x 250 px, about the size the report's grid shows
FONT = 9  # points: about 12 px, next to the page's 14 px text
LEGEND_CHARS = 42  # the longest legend text that fits one row of a histogram
DPI = 100
PALETTE = 64  # colours of a report figure's PNG
THUMB_MAX = 64  # longest side of a thumbnail, in pixels (larger images are block-averaged)
CLEAN_COLOR = "#8da0b3"
FLAG_COLOR = "#c0392b"
NO_METADATA = {"Software": None}


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_uri(fig: Any) -> str:
    """``fig`` (a matplotlib Figure on an Agg canvas) as a ``data:`` URI of a paletted PNG."""
    from PIL import Image

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    h, w = rgba.shape[:2]
    rgb = rgba[..., :3].astype(np.uint32)
    key = (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()
    colors, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    # the palette: the most used exact colours (fills, lines, markers, text), so a small red
    # marker keeps its red; anti-aliased edges take the nearest of them
    palette = colors[np.argsort(-counts, kind="stable")[:PALETTE]]
    a, b = _rgb(colors), _rgb(palette)
    nearest = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    img = Image.fromarray(nearest[inverse].reshape(h, w).astype(np.uint8), mode="P")
    img.putpalette(b.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="png", optimize=True)
    return _uri(buf.getvalue())


def _rgb(keys: np.ndarray) -> np.ndarray:
    """Packed 0xRRGGBB colours as an (n, 3) integer array."""
    k = keys.astype(np.int64)
    return np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=1)


def histogram_figure(scores: np.ndarray, flagged: np.ndarray, threshold: float, title: str) -> Any:
    """Stacked histogram (log y) of calibrated scores in [0, 1], flagged rows in red; the legend
    sits between the title and the plot, clear of the bars and the threshold line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    mask = np.asarray(flagged, dtype=bool)
    edges = np.linspace(0.0, 1.0, BINS + 1)
    clean, _ = np.histogram(s[~mask], bins=edges)
    hit, _ = np.histogram(s[mask], bins=edges)
    labels = ("threshold", f"not flagged ({int(clean.sum())})", f"flagged ({int(hit.sum())})")
    rows = 1 if sum(map(len, labels)) <= LEGEND_CHARS else 2  # a second legend row when long
    fig = Figure(figsize=SIZE, dpi=DPI)  # fixed margins: a constrained layout costs twice the time
    fig.subplots_adjust(left=0.15, right=0.96, bottom=0.19, top=0.76 if rows == 1 else 0.68)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = edges[1] - edges[0]
    left = edges[:-1]
    # bars of height 0 are left out: a log axis has no room for them
    keep = clean > 0
    ax.bar(left[keep], clean[keep], width=width, align="edge", color=CLEAN_COLOR)
    keep = hit > 0
    ax.bar(left[keep], hit[keep], width=width, bottom=clean[keep], align="edge", color=FLAG_COLOR)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.7, top=max(float((clean + hit).max()), 1.0) * 2.0)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("calibrated score (higher = more suspicious)", fontsize=FONT)
    ax.set_ylabel("rows", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=FONT + 1, y=0.98)
    handles = [Line2D([], [], color="black", linestyle="--", linewidth=1),
               Patch(color=CLEAN_COLOR), Patch(color=FLAG_COLOR)]  # as in labels
    order = (0, 1, 2) if rows == 1 else (1, 0, 2)  # by columns: on two rows, the bars go first
    fig.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=FONT - 0.5,
               loc="upper center", bbox_to_anchor=(0.5, 0.9), ncols=3 if rows == 1 else 2,
               frameon=False, handlelength=1.2, handletextpad=0.4, columnspacing=0.9,
               borderaxespad=0.0)
    return fig


def histogram_uri(scores: np.ndarray, flagged: np.ndarray, threshold: float, title: str) -> str:
    """:func:`histogram_figure` as a PNG ``data:`` URI."""
    return png_uri(histogram_figure(scores, flagged, threshold, title))


def _shrink(img: np.ndarray) -> np.ndarray:
    """Block-average ``img`` (h, w[, c]) so that its longest side is at most ``THUMB_MAX``."""
    step = -(-max(img.shape[0], img.shape[1]) // THUMB_MAX)
    if step <= 1:
        return img
    h, w = img.shape[0] // step * step, img.shape[1] // step * step
    cut = img[:h, :w]
    out: np.ndarray = cut.reshape(h // step, step, w // step, step, *img.shape[2:]).mean(axis=(1, 3))
    return out


def _channels_last(X: Any) -> np.ndarray:
    """Images as ``(n, h, w)`` or ``(n, h, w, 3|4)``; channel-first input is moved."""
    arr = np.asarray(X)
    if arr.ndim == 4:
        if arr.shape[-1] not in (1, 3, 4) and arr.shape[1] in (1, 3, 4):
            arr = np.moveaxis(arr, 1, -1)
        if arr.shape[-1] not in (3, 4):
            arr = arr[..., 0]  # one channel (or an odd channel count): show the first as grey
    return arr


def thumbnail_uris(X: Any, rows: np.ndarray) -> list[str]:
    """One small PNG per row of image data ``X`` (n, h, w[, c]), scaled on the shown rows' range."""
    from matplotlib.image import imsave

    rows = np.asarray(rows, dtype=np.intp)
    if rows.size == 0:
        return []
    imgs = _channels_last(X)[rows].astype(np.float64)
    lo, hi = float(imgs.min()), float(imgs.max())
    scaled = (imgs - lo) / (hi - lo) if hi > lo else np.zeros_like(imgs)
    out = []
    for img in scaled:
        buf = io.BytesIO()
        # None drops matplotlib's default "Software" entry (documented; the stubs say str only)
        imsave(buf, _shrink(img), format="png", cmap="gray", vmin=0.0, vmax=1.0,
               metadata=cast("dict[str, str]", NO_METADATA))
        out.append(_uri(buf.getvalue()))
    return out
