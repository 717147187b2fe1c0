"""Turning an uploaded file into a community photo with Pillow: decode safely, drop metadata, square it.

Accepted: PNG, JPEG, GIF and WebP (the first frame of animations). The pixel count is checked from the header
before anything is decoded, so a small file that would expand to gigabytes (a decompression bomb) is refused
cheaply. The output is a fresh image (no EXIF, no GPS, no ICC or text chunks), orientation applied, cropped to a
centered square, at most 512 px, as WebP; plus a preview of a few hundred bytes to show before downloading.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
MAX_PIXELS = 40_000_000  # e.g. 8000 x 5000
PHOTO_SIZE = 512
PREVIEW_SIZE = 24
MIME = "image/webp"


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; the message says why, for the client."""


@dataclass(frozen=True)
class Photo:
    data: bytes
    preview: bytes
    width: int
    height: int


def _encode(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


def normalize(data: bytes) -> Photo:
    with warnings.catch_warnings():
        # Pillow warns (rather than fails) between MAX_IMAGE_PIXELS and twice that; make every bomb an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as source:
                width, height = source.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise ImageRejected(f"image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels are accepted")
                source.seek(0)
                if source.format == "JPEG":
                    source.draft("RGB", (PHOTO_SIZE * 2, PHOTO_SIZE * 2))  # decode at a reduced scale: faster
                source.load()
                image = ImageOps.exif_transpose(source)
                if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                    # 16-bit greyscale: convert("L") would clip every value above 255 to white; scale instead.
                    image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
                # An alpha channel, or a colour or palette entry marked transparent (PNG tRNS).
                has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
                image = image.convert("RGBA" if has_alpha else "RGB")
        except ImageRejected:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected(f"not an accepted image (PNG, JPEG, GIF or WebP): {error}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageRejected(f"the image data is corrupt or truncated: {error}") from None
    side = min(image.size)
    square = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    if side > PHOTO_SIZE:
        square = square.resize((PHOTO_SIZE, PHOTO_SIZE), Image.Resampling.LANCZOS)
    # A new image from the pixels alone: nothing of the original's metadata can come along.
    clean = Image.new(square.mode, square.size)
    clean.paste(square)
    preview = clean.resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
    return Photo(data=_encode(clean, 85), preview=_encode(preview, 40), width=clean.width, height=clean.height)
