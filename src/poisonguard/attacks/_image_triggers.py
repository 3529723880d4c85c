"""Image triggers: patch, blend, shape, noise, sinusoid (SIG) and warp (WaNet).

Every trigger works on ``(n, h, w)`` and ``(n, h, w, c)`` arrays, keeps the input's dtype and
stays within the data range it was fitted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from poisonguard.attacks._trigger_base import (
    FitOptions,
    Trigger,
    image_array,
    restore_dtype,
)
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["BlendTrigger", "NoiseTrigger", "PatchTrigger", "ShapeTrigger", "SinusoidTrigger",
           "WarpTrigger", "fit_image_trigger"]

GLYPHS = ("x", "plus", "l")


def _check_fits(X: Any, h: int, w: int, row: int, col: int, what: str) -> None:
    """Refuse a stamp of ``h`` x ``w`` pixels at ``(row, col)`` that does not lie inside the
    images ``X`` (checked before the stamp is built: a saved trigger may claim any size)."""
    shape = np.shape(X)
    if len(shape) < 3 or min(row, col) < 0 or row + h > shape[1] or col + w > shape[2]:
        raise InputError(f"{what} at ({row}, {col}) does not fit images of shape {shape[1:]}")


def _stamp(X: Any, size: tuple[int, int], row: int, col: int, value: float, what: str,
           mask: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """A copy of images ``X`` with an ``h x w`` window at ``(row, col)`` set to ``value``: all of
    it, or the pixels of ``mask()`` (built only once the window is known to fit; a saved
    trigger may claim any size). ``what`` names the stamp in the error when it does not fit."""
    h, w = size
    _check_fits(X, h, w, row, col, what)
    out = np.array(X, copy=True)
    window = out[:, row:row + h, col:col + w]
    if mask is None:
        window[:] = value
    else:
        window[:, mask()] = value
    return out


def _check_pattern(arr: np.ndarray, pattern: np.ndarray, kind: str) -> None:
    if arr.shape[1:] != pattern.shape:
        raise InputError(f"{kind} pattern has shape {pattern.shape} but images have shape "
                         f"{arr.shape[1:]}")


@dataclass(frozen=True)
class PatchTrigger(Trigger):
    """A square of ``size`` pixels set to ``value``, top-left corner at ``(row, col)``."""

    kind: ClassVar[str] = "patch"
    modality: ClassVar[str] = "image"
    size: int
    row: int
    col: int
    value: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        return _stamp(X, (self.size, self.size), self.row, self.col, self.value,
                      f"a {self.size}-pixel patch")


@dataclass(frozen=True)
class BlendTrigger(Trigger):
    """``(1 - alpha) * x + alpha * pattern`` over the whole image."""

    kind: ClassVar[str] = "blend"
    modality: ClassVar[str] = "image"
    pattern: np.ndarray
    alpha: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        arr = np.asarray(X)
        _check_pattern(arr, self.pattern, self.kind)
        out = (1.0 - self.alpha) * arr.astype(np.float64) + self.alpha * self.pattern
        return restore_dtype(out, arr)


@dataclass(frozen=True)
class ShapeTrigger(Trigger):
    """A glyph of 1-pixel strokes set to ``value``, its top-left corner at ``(row, col)``.

    ``glyph`` holds one string per glyph row, ``"#"`` for a stroke pixel and ``"."`` for one
    left as it is.
    """

    kind: ClassVar[str] = "shape"
    modality: ClassVar[str] = "image"
    glyph: tuple[str, ...]
    row: int
    col: int
    value: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        h, w = len(self.glyph), max((len(line) for line in self.glyph), default=0)
        what = f"a {h}x{w} glyph"
        if not h or any(len(line) != w or set(line) - {"#", "."} for line in self.glyph):
            raise InputError(f"shape trigger: 'glyph' must be rows of equal length made of "
                             f"'#' and '.' (got {h} rows)")
        return _stamp(X, (h, w), self.row, self.col, self.value, what, mask=lambda: np.array(
            [[c == "#" for c in line] for line in self.glyph], dtype=bool))


@dataclass(frozen=True)
class NoiseTrigger(Trigger):
    """A fixed additive noise pattern, the sum clipped to ``[low, high]``."""

    kind: ClassVar[str] = "noise"
    modality: ClassVar[str] = "image"
    pattern: np.ndarray
    low: float
    high: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        arr = image_array(X, self.kind)
        _check_pattern(arr, self.pattern, self.kind)
        return restore_dtype(np.clip(arr + self.pattern, self.low, self.high), X)


@dataclass(frozen=True)
class SinusoidTrigger(Trigger):
    """SIG: ``x + delta * sin(2 pi j frequency / w)`` along the columns ``j``, clipped to
    ``[low, high]``."""

    kind: ClassVar[str] = "sinusoid"
    modality: ClassVar[str] = "image"
    delta: float
    frequency: float
    low: float
    high: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        arr = image_array(X, self.kind)
        w = arr.shape[2]
        wave = self.delta * np.sin(2.0 * np.pi * np.arange(w) * self.frequency / w)
        wave = wave.reshape((1, 1, w) + (1,) * (arr.ndim - 3))
        return restore_dtype(np.clip(arr + wave, self.low, self.high), X)


@dataclass(frozen=True)
class WarpTrigger(Trigger):
    """WaNet: a smooth elastic warp. ``grid`` ``(2, k, k)`` holds row and column displacements
    on a coarse grid (mean absolute value 1); upsampled to the image and scaled by ``strength``
    pixels it moves every pixel, and the image is resampled bilinearly."""

    kind: ClassVar[str] = "warp"
    modality: ClassVar[str] = "image"
    grid: np.ndarray
    strength: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        arr = image_array(X, self.kind)
        h, w = arr.shape[1:3]
        grid = np.asarray(self.grid, dtype=np.float64)
        if grid.ndim != 3 or grid.shape[0] != 2 or min(grid.shape[1:]) < 2:
            raise InputError(f"warp grid must have shape (2, k, k) with k >= 2 (got {grid.shape})")
        k_h, k_w = grid.shape[1:]
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                                 indexing="ij")
        field = _bilinear(grid, rows * (k_h - 1) / max(h - 1, 1),
                          cols * (k_w - 1) / max(w - 1, 1)) * self.strength
        return restore_dtype(_bilinear(arr, rows + field[0], cols + field[1]), X)


def _bilinear(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``arr`` (axes 1 and 2 are the image) sampled at fractional ``(rows, cols)``, clamped to
    the edges."""
    h, w = arr.shape[1:3]
    r = np.clip(rows, 0.0, h - 1.0)
    c = np.clip(cols, 0.0, w - 1.0)
    r0 = np.floor(r).astype(np.intp)
    c0 = np.floor(c).astype(np.intp)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    extra = (1,) * (arr.ndim - 3)
    fr, fc = (r - r0).reshape(r.shape + extra), (c - c0).reshape(c.shape + extra)
    top = arr[:, r0, c0] * (1.0 - fc) + arr[:, r0, c1] * fc
    bottom = arr[:, r1, c0] * (1.0 - fc) + arr[:, r1, c1] * fc
    out: np.ndarray = top * (1.0 - fr) + bottom * fr
    return out


def _mean_image(X: Any) -> np.ndarray:
    """The mean image ``(h, w)`` over rows (and channels), in chunks of rows."""
    total = np.zeros(X.shape[1:3])
    for start in range(0, len(X), 4096):
        chunk = np.asarray(X[start:start + 4096], dtype=np.float64)
        total += chunk.sum(axis=0) if chunk.ndim == 3 else chunk.sum(axis=(0, 3))
    out: np.ndarray = total / (len(X) * (X.shape[3] if X.ndim == 4 else 1))
    return out


def _place(shape: tuple[str, ...], mean: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A seeded top-left corner among the half of the places where the glyph's pixels are
    darkest on average, so that it stands out."""
    mask = np.array([[c == "#" for c in line] for line in shape], dtype=bool)
    gh, gw = mask.shape
    places = [(r, c) for r in range(mean.shape[0] - gh + 1) for c in range(mean.shape[1] - gw + 1)]
    ink = np.array([mean[r:r + gh, c:c + gw][mask].mean() for r, c in places])
    dark = np.flatnonzero(ink <= np.median(ink))
    r, c = places[int(rng.choice(dark))]
    return r, c


def glyph(name: str, side: int) -> tuple[str, ...]:
    """A ``side`` x ``side`` glyph of 1-pixel strokes: ``x``, ``plus`` or ``l``."""
    mid = side // 2
    cells = [["." for _ in range(side)] for _ in range(side)]
    for i in range(side):
        if name == "x":
            cells[i][i] = cells[i][side - 1 - i] = "#"
        elif name == "plus":
            cells[mid][i] = cells[i][mid] = "#"
        else:  # "l": left stroke and foot
            cells[i][0] = cells[side - 1][i] = "#"
    return tuple("".join(line) for line in cells)


# -------------------------------------------------------------------- data-adapted defaults
NOISE_EPS = 0.25
SIG_DELTA = 0.3
SIG_FREQUENCY = 6.0
WARP_PIXELS_PER_8 = 1.0
WARP_GRID = 4

_OPTIONS = {"patch": ("size", "value"), "blend": ("alpha",), "shape": ("size", "value"),
            "noise": ("alpha",), "sinusoid": ("alpha",), "warp": ("alpha",)}


def fit_image_trigger(dataset: Dataset, kind: str, label: Any, rng: np.random.Generator,
                      opts: FitOptions) -> Trigger:
    """A ``kind`` image trigger whose unset parameters adapt to ``dataset`` (see
    :func:`~poisonguard.attacks.fit_trigger`)."""
    opts.refuse(kind, _OPTIONS[kind])
    lo, hi = float(np.min(dataset.X)), float(np.max(dataset.X))
    h, w = dataset.X.shape[1:3]
    if kind in ("patch", "shape"):
        least = 1 if kind == "patch" else 3
        side = opts.size if opts.size is not None else min(h, w, max(3, round(min(h, w) / 5)))
        if not least <= side <= min(h, w):
            raise InputError(f"'trigger_size' must be in [{least}, {min(h, w)}] (got {side})")
        value = hi if opts.value is None else opts.value
        if kind == "patch":
            return PatchTrigger(side, h - side - (h > 8), w - side - (w > 8), value, label)
        shape = glyph(GLYPHS[int(rng.integers(len(GLYPHS)))], side)
        row, col = _place(shape, _mean_image(dataset.X), rng)
        return ShapeTrigger(shape, row, col, value, label)
    default = {"blend": 0.3, "noise": NOISE_EPS, "sinusoid": SIG_DELTA,
               "warp": WARP_PIXELS_PER_8 * min(h, w) / 8}[kind]
    a = default if opts.alpha is None else float(opts.alpha)
    if kind == "warp":
        if not 0.0 < a <= min(h, w) / 2:
            raise InputError(f"'alpha' (warp displacement in pixels) must be in (0, "
                             f"{min(h, w) / 2:g}] (got {a})")
        grid = rng.uniform(-1.0, 1.0, size=(2, WARP_GRID, WARP_GRID))
        return WarpTrigger(grid / np.abs(grid).mean(), a, label)
    if not 0.0 < a < 1.0:
        raise InputError(f"'alpha' must be in (0, 1) (got {a})")
    if kind == "blend":
        return BlendTrigger(rng.uniform(lo, hi, size=dataset.X.shape[1:]), a, label)
    if kind == "noise":
        pattern = rng.uniform(-1.0, 1.0, size=dataset.X.shape[1:]) * a * (hi - lo)
        return NoiseTrigger(pattern, lo, hi, label)
    return SinusoidTrigger(a * (hi - lo), SIG_FREQUENCY, lo, hi, label)
