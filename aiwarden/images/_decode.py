"""Decode one image safely: bounded bytes, bounded pixels, a fixed set of formats.

Every way an input can fail ends in a :class:`DecodeFailure` with a reason code, never an
exception leaking out: a server can quarantine it, an audit can name it. The pixel bound is
checked on the header, before any pixel is decoded, so a 100-megapixel PNG of zeros (a few
hundred KB) costs nothing; JPEGs larger than the analysis size are decoded at 1/2..1/8 scale
(Pillow's draft mode), so memory stays bounded by ``max_side`` too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiwarden.images._deps import pil

__all__ = ["FORMATS", "DecodeFailure", "Decoded", "decode", "decode_base64", "decode_many",
           "decoded_pixels"]

#: Formats Pillow may open. Others (EPS runs Ghostscript, PSD, ICO...) are refused up front.
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
MAX_BYTES = 50_000_000
MAX_PIXELS = 50_000_000
MAX_SIDE = 512


@dataclass(frozen=True, slots=True)
class Decoded:
    """An image ready for analysis: an RGB Pillow image at most ``max_side`` on the longer
    side. ``width``/``height``/``mode``/``format``/``file_size`` describe the original; the
    analysed image may be a reduced copy (``scale`` < 1)."""

    image: Any  # PIL.Image.Image in mode RGB
    width: int
    height: int
    mode: str
    format: str
    channels: int
    file_size: int
    digest: str  # of the input bytes (or array data): exact duplicates
    non_finite: int = 0  # NaN/inf values in a float input
    scale: float = 1.0
    grid: int = 0  # a JPEG's 8-pixel block in the analysed image's pixels (0: none)
    mcu: int = 0  # ... and the height of its row of coded blocks (16 or 8 at full scale)

    @property
    def pixels(self) -> np.ndarray:
        """(h, w, 3) uint8."""
        return np.asarray(self.image)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why an input is not an image we can analyse. ``reason`` is a stable code."""

    reason: str
    message: str
    file_size: int = 0


def decode_base64(text: str | bytes) -> bytes | DecodeFailure:
    """Strict base64 (standard alphabet, padding optional, ``data:`` URL prefix allowed)."""
    if isinstance(text, str):
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            return DecodeFailure("bad_base64", "The base64 string has non-ASCII characters.")
    text = b"".join(text.split())
    text += b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        return DecodeFailure("bad_base64", f"The string is not valid base64: {exc}.")


def decode(item: Any, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
           max_bytes: int = MAX_BYTES, formats: tuple[str, ...] = FORMATS
           ) -> Decoded | DecodeFailure:
    """Decode encoded bytes or a numpy array (H×W, H×W×1/3/4) into a :class:`Decoded`.

    A :class:`DecodeFailure` passes through, so ``quality([decode_base64(s) ...])`` keeps
    ``bad_base64`` as the reason."""
    if isinstance(item, DecodeFailure):  # e.g. decode_base64's: keep its reason
        return item
    if isinstance(item, np.ndarray):
        return _from_array(item, max_side=max_side, max_pixels=max_pixels)
    if isinstance(item, (bytearray, memoryview)):
        item = bytes(item)
    if not isinstance(item, bytes):
        return DecodeFailure("not_an_image", f"Expected image bytes or an array. Got "
                             f"{type(item).__name__} instead.")
    size = len(item)
    if size == 0:
        return DecodeFailure("empty", "The file is empty.")
    if size > max_bytes:
        return DecodeFailure("too_large_file", f"The file has {size} bytes, more than "
                             f"max_bytes={max_bytes}.", size)
    Image = pil()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(item), formats=list(formats))
    except Image.DecompressionBombError as exc:
        return DecodeFailure("too_many_pixels", str(exc), size)
    except Image.UnidentifiedImageError:
        return DecodeFailure("not_an_image", f"Not an image in a supported format "
                             f"({', '.join(formats)}).", size)
    except Exception as exc:  # Pillow decoders raise OSError, SyntaxError, ValueError...
        return DecodeFailure("unreadable", f"The header cannot be read: {exc}.", size)
    return _load(im, item, max_side, max_pixels)  # in memory: nothing to close


def decoded_pixels(item: Any, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
                   max_bytes: int = MAX_BYTES, formats: tuple[str, ...] = FORMATS) -> int:
    """How many pixels :func:`decode` will decode for ``item``, read from its header only
    (~25 us): a server admits a request by this before any pixel is decoded. A large JPEG
    counts at its draft scale (what is decoded); 0 for what decode refuses before decoding
    (not an image, too many pixels or bytes, a failure passed in). Arrays count their own."""
    if isinstance(item, np.ndarray):
        return int(item.shape[0] * item.shape[1]) if item.ndim >= 2 else 0
    if isinstance(item, (bytearray, memoryview)):
        item = bytes(item)
    if not isinstance(item, bytes) or not item or len(item) > max_bytes:
        return 0
    Image = pil()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(item), formats=list(formats))
        width, height = im.size
        if width < 1 or height < 1 or width * height > max_pixels:
            return 0
        _draft(im, max_side)
        return int(im.size[0] * im.size[1])
    except Exception:  # decode refuses it before decoding: it costs nothing there either
        return 0


def decode_many(items: Any, **options: Any) -> list[Decoded | DecodeFailure]:
    """:func:`decode` each item; failures stay in place."""
    return [decode(it, **options) for it in items]


def _load(im: Any, data: bytes, max_side: int, max_pixels: int) -> Decoded | DecodeFailure:
    size = len(data)
    width, height = im.size
    if width < 1 or height < 1:
        return DecodeFailure("unreadable", f"The header says {width}x{height} pixels.", size)
    if width * height > max_pixels:
        return DecodeFailure("too_many_pixels", f"{width}x{height} is {width * height} "
                             f"pixels, more than max_pixels={max_pixels}.", size)
    mode, fmt = im.mode, im.format or ""
    channels = len(im.getbands())
    # the block grid of a JPEG decoded as RGB or grey (CMYK's is lost in the conversion)
    tall = 8 * max((v for *_, v, _ in getattr(im, "layer", [])), default=1)
    shrink = _draft(im, max_side)
    try:
        im.load()
    except Exception as exc:  # Pillow decoders raise OSError, SyntaxError, ValueError...
        text = str(exc)
        reason = "truncated" if "truncated" in text.lower() else "unreadable"
        return DecodeFailure(reason, f"The pixels cannot be decoded: {text}.", size)
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _from_array(np.asarray(im), max_side=max_side, max_pixels=max_pixels, mode=mode,
                           fmt=fmt, file_size=size, digest=digest, size=(width, height))
    try:
        if im.mode in ("P", "PA") and (im.mode == "PA" or "transparency" in im.info):
            im = im.convert("RGBA")  # Pillow warns on P -> RGB with byte transparency
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        shrink *= -(-max(rgb.size) // max_side) if max(rgb.size) > max_side else 1
        rgb = _reduce(rgb, max_side)
    except Exception as exc:  # Pillow decoders raise OSError, SyntaxError, ValueError...
        return DecodeFailure("unreadable", f"The pixels cannot be converted: {exc}.", size)
    blocks = fmt == "JPEG" and mode in ("RGB", "L", "YCbCr") and 8 % shrink == 0
    return Decoded(rgb, width, height, mode, fmt, channels, size, digest,
                   scale=rgb.size[0] / width, grid=8 // shrink if blocks else 0,
                   mcu=tall // shrink if blocks and tall % shrink == 0 else 0)


def _draft(im: Any, max_side: int) -> int:
    """Ask a JPEG larger than ``max_side`` to decode at 1/2..1/8 scale (Pillow's draft
    mode, which also sets ``im.size`` to the reduced size); returns the scale's divisor."""
    width, height = im.size
    mode, long_side = im.mode, max(width, height)
    if im.format != "JPEG" or long_side <= max_side or mode not in ("RGB", "L", "CMYK",
                                                                    "YCbCr"):
        return 1
    ratio = max_side / long_side
    im.draft(mode if mode != "YCbCr" else "RGB",
             (max(1, int(width * ratio)), max(1, int(height * ratio))))
    return int((getattr(im, "decoderconfig", None) or (1,))[0] or 1)


def _reduce(im: Any, max_side: int) -> Any:
    """Box-reduce by the smallest integer factor that fits (cheap, no resampling blur)."""
    long_side = max(im.size)
    if long_side <= max_side:
        return im
    return im.reduce(-(-long_side // max_side))


def _from_array(arr: np.ndarray, *, max_side: int, max_pixels: int, mode: str = "",
                fmt: str = "array", file_size: int | None = None, digest: str = "",
                size: tuple[int, int] | None = None) -> Decoded | DecodeFailure:
    """Arrays: uint8 as is, other integers scaled from uint16, floats read in [0, 1]."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        return DecodeFailure("wrong_shape", f"An image array must be HxW, HxWx1, HxWx3 or "
                             f"HxWx4. Got shape {a.shape} instead.")
    if a.dtype.kind not in "biuf":
        return DecodeFailure("wrong_shape", f"An image array must be numeric. Got dtype "
                             f"{a.dtype} instead.")
    h, w = a.shape[:2]
    if h * w > max_pixels:
        return DecodeFailure("too_many_pixels", f"{w}x{h} is {w * h} pixels, more than "
                             f"max_pixels={max_pixels}.")
    channels = 1 if a.ndim == 2 else a.shape[2]
    non_finite = 0
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        non_finite = int(bad.sum())
        a = np.where(bad, 0.0, a) if non_finite else a
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a.astype(np.float64) / (257.0 if a.max(initial=0) > 255 else 1.0) + 0.5,
                    0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif channels == 4:
        a = a[:, :, :3]
    im = _reduce(pil().fromarray(np.ascontiguousarray(a), "RGB"), max_side)
    if not digest:
        digest = hashlib.blake2b(np.ascontiguousarray(arr).tobytes(),
                                 digest_size=16).hexdigest()
    width, height = size or (w, h)
    return Decoded(im, width, height, mode or {1: "L", 3: "RGB", 4: "RGBA"}[channels], fmt,
                   channels, arr.nbytes if file_size is None else file_size, digest,
                   non_finite, im.size[0] / width)
