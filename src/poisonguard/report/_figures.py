"""Images for the HTML report, as ``data:`` URIs: score histograms and image thumbnails.

Histograms are drawn from :func:`numpy.histogram` counts (never one artist per row), so a
million-row report costs no more than a small one. PNGs carry no software or date metadata:
the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import io
from typing import Any, cast

import numpy as np

__all__ = ["histogram_uri", "thumbnail_uris"]

BINS = 40
SIZE = (5.0, 2.4)
DPI = 100
THUMB_MAX = 64  # longest side of a thumbnail, in pixels (larger images are block-averaged)
CLEAN_COLOR = "#8da0b3"
FLAG_COLOR = "#c0392b"
NO_METADATA = {"Software": None}


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def histogram_uri(scores: np.ndarray, flagged: np.ndarray, threshold: float, title: str) -> str:
    """Stacked histogram (log y) of calibrated scores in [0, 1], flagged rows in red."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    mask = np.asarray(flagged, dtype=bool)
    edges = np.linspace(0.0, 1.0, BINS + 1)
    clean, _ = np.histogram(s[~mask], bins=edges)
    hit, _ = np.histogram(s[mask], bins=edges)
    fig = Figure(figsize=SIZE, dpi=DPI)  # fixed margins: a constrained layout costs twice the time
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.88)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = edges[1] - edges[0]
    left = edges[:-1]
    # bars of height 0 are left out: a log axis has no room for them
    keep = clean > 0
    ax.bar(left[keep], clean[keep], width=width, align="edge", color=CLEAN_COLOR,
           label=f"not flagged ({int(clean.sum())})")
    keep = hit > 0
    ax.bar(left[keep], hit[keep], width=width, bottom=clean[keep], align="edge", color=FLAG_COLOR,
           label=f"flagged ({int(hit.sum())})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_yscale("log")
    # headroom above the tallest bar (a decade and a half on the log axis) keeps the legend clear
    ax.set_ylim(bottom=0.7, top=max(float((clean + hit).max()), 1.0) * 40.0)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("calibrated score (higher = more suspicious)")
    ax.set_ylabel("rows")
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", ncols=3, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=NO_METADATA)
    return _uri(buf.getvalue())


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
