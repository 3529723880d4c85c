"""Decoding PNG and JPEG images with Pillow, sizes checked before any pixel is decoded.

Only Pillow's PNG and JPEG decoders are ever used (a file with another format's bytes is
refused, whatever its name). An image declaring more than :data:`IMAGE_MAX_PIXELS` pixels is
refused as a decompression bomb from its header alone, and every image's size is read before
any is decoded, so the pixels of the whole data set are checked against this machine's memory
first. Images become ``uint8``: ``(h, w)`` when every image of the data set is grayscale, else
``(h, w, 3)`` RGB (grayscale images repeated in the three channels, alpha dropped).
"""

from __future__ import annotations

import io as _io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.errors import DependencyError, InputError

__all__ = ["IMAGE_MAX_PIXELS", "IMAGE_SUFFIXES", "Header", "Shape", "as_uint8", "decode",
           "encode_png", "header", "parse_image_size", "plan"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_MAX_PIXELS = 89_478_485  # Pillow's own default bound (a 0.25 GiB RGB image)
SIZE_MAX = 8192  # --image-size side
_GRAY = frozenset({"1", "L", "LA"})
_COLOR = frozenset({"P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})


@dataclass(frozen=True)
class Header:
    """What an image's header declares: its size and whether it is grayscale."""

    height: int
    width: int
    gray: bool


@dataclass(frozen=True)
class Shape:
    """The shape every image of a data set is decoded to."""

    height: int
    width: int
    gray: bool

    @property
    def cells(self) -> tuple[int, ...]:
        return (self.height, self.width) if self.gray else (self.height, self.width, 3)


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DependencyError("reading images needs Pillow: pip install pillow") from None
    return Image


def parse_image_size(text: str | None, option: str = "--image-size") -> tuple[int, int] | None:
    """``"28"`` -> ``(28, 28)``, ``"28x32"`` -> ``(28, 32)`` (height x width)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
        h, w = (int(parts[0]), int(parts[-1]))
        if 1 <= h <= SIZE_MAX and 1 <= w <= SIZE_MAX:
            return h, w
    raise InputError(f"{option} must be H or HxW in pixels (each 1..{SIZE_MAX}), e.g. 28 or "
                     f"28x32 (got {text!r})")


def _open(source: bytes | Path, where: str) -> Any:
    """The image, its header read and checked, no pixel decoded yet."""
    Image = _pil()
    fp = _io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp, formats=("PNG", "JPEG"))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise InputError(f"{where}: declares more than {IMAGE_MAX_PIXELS:,} pixels; refused "
                             "as a decompression bomb") from None
        except Image.UnidentifiedImageError:
            raise InputError(f"{where}: not a PNG or JPEG image") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InputError(f"{where}: cannot read the image ({_first(exc)})") from None
    w, h = im.size
    if w * h > IMAGE_MAX_PIXELS:
        im.close()
        raise InputError(f"{where}: declares {h}x{w} pixels ({w * h:,}), more than "
                         f"{IMAGE_MAX_PIXELS:,}; refused as a decompression bomb")
    if not w or not h or im.mode not in _GRAY | _COLOR:
        im.close()
        what = f"mode {im.mode}" if w and h else "no pixels"
        raise InputError(f"{where}: image with {what} is not read; save 8-bit grayscale or RGB "
                         "PNG or JPEG images")
    return im


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def header(source: bytes | Path, where: str) -> Header:
    """An image's size and kind from its header (no pixel decoded)."""
    with _open(source, where) as im:
        return Header(im.size[1], im.size[0], im.mode in _GRAY)


def plan(headers: Sequence[Header], names: Sequence[str], size: tuple[int, int] | None,
         where: str) -> Shape:
    """The shape the images are decoded to: ``size`` when given, else the one size every image
    must have (the first that differs is named); gray only when every image is. Refuses pixels
    beyond this machine's memory (``where`` names the data set)."""
    from poisonguard.io import _memory_bytes, _size

    if size is None:
        first = headers[0]
        for hd, name in zip(headers, names, strict=True):
            if (hd.height, hd.width) != (first.height, first.width):
                raise InputError(f"{name}: is {hd.height}x{hd.width} pixels (height x width) but "
                                 f"{names[0]} is {first.height}x{first.width}; all images must "
                                 "have one size, or give --image-size H or HxW to resize them")
        size = (first.height, first.width)
    shape = Shape(size[0], size[1], all(hd.gray for hd in headers))
    need = len(headers) * int(np.prod(shape.cells))
    if need > _memory_bytes():
        raise InputError(f"{where}: {len(headers):,} images of {'x'.join(map(str, shape.cells))} "
                         f"pixels need {_size(need)}, more than this machine's memory "
                         f"({_size(_memory_bytes())})")
    return shape


def decode(source: bytes | Path, where: str, expected: Header, shape: Shape) -> np.ndarray:
    """The pixels of an image whose header was ``expected``, as ``shape`` (uint8)."""
    Image = _pil()
    with _open(source, where) as im:
        if (im.size[1], im.size[0]) != (expected.height, expected.width):
            raise InputError(f"{where}: changed while it was read; run the command again")
        try:
            pic = im.convert("L" if shape.gray else "RGB")
            if pic.size != (shape.width, shape.height):
                pic = pic.resize((shape.width, shape.height), Image.Resampling.BILINEAR)
            return np.asarray(pic, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated, corrupt
            raise InputError(f"{where}: cannot read the image ({_first(exc)})") from None


def encode_png(pixels: np.ndarray) -> bytes:
    """``(h, w)`` or ``(h, w, 3)`` uint8 pixels as PNG bytes."""
    Image = _pil()
    out = _io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def as_uint8(X: np.ndarray, where: str) -> np.ndarray:
    """Image values as uint8: kept when they are whole numbers in 0..255, scaled by 255 when
    they lie in [0, 1], else refused."""
    arr = np.asarray(X)
    if arr.dtype == np.uint8:
        return arr
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if lo >= 0 and hi <= 255 and np.all(arr == np.round(arr)):
        return arr.astype(np.uint8)
    if lo >= 0 and hi <= 1:
        return np.round(arr * 255).astype(np.uint8)
    raise InputError(f"{where}: image values in [{lo:g}, {hi:g}] are neither whole numbers in "
                     "0..255 nor in [0, 1]; scale them first")
