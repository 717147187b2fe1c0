"""images.normalize: what becomes of an upload. Every accepted format and shape comes out as a clean square WebP of
at most 512 px with a tiny preview; everything else (corrupt, truncated, other formats, decompression bombs) is
refused with ImageRejected.

The image factories at the top are shared with tests/api/test_photos.py, which sends the same kinds of files
through the API.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin

from communities.media import images

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
MAGENTA = (255, 0, 255)
GRAY = (128, 128, 128)

PHOTO_MAX_SIDE = 512
PREVIEW_MAX_BYTES = 1000
TOLERANCE = 48  # per channel, for colors after JPEG/WebP compression

GPS_LATITUDE = (52.0, 31.0, 12.5)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>secret author'
    b"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
)

# ------------------------------------------------------------------------------------------------ image factories


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def patterned(size: tuple[int, int], seed: int, mode: str = "RGB") -> Image.Image:
    """A deterministic image of colored blocks, different for every seed (so stored photos differ too)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    width, height = size
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = min(width, x0 + 1 + rng.randrange(max(1, width // 2))), min(height, y0 + 1 + rng.randrange(height))
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x0, y0, x1, y1))
    return image.convert(mode)


def unique_png(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(patterned(size, seed), "PNG")


def solid(color, size: tuple[int, int] = (64, 64), fmt: str = "PNG", mode: str = "RGB", **params) -> bytes:
    return encode(Image.new(mode, size, color), fmt, **params)


def bands(size: tuple[int, int], colors, *, vertical: bool) -> Image.Image:
    """Three equal bands (left to right, or top to bottom when vertical)."""
    width, height = size
    image = Image.new("RGB", size)
    for index, color in enumerate(colors):
        if vertical:
            image.paste(color, (0, index * height // 3, width, (index + 1) * height // 3))
        else:
            image.paste(color, (index * width // 3, 0, (index + 1) * width // 3, height))
    return image


def quadrants(size: tuple[int, int] = (600, 200)) -> Image.Image:
    """A wide image whose centered square is split in four: red top-left, green top-right, yellow bottom-right,
    blue bottom-left (gray outside the square)."""
    width, height = size
    side = min(size)
    left, top = (width - side) // 2, (height - side) // 2
    half = side // 2
    image = Image.new("RGB", size, GRAY)
    image.paste(RED, (left, top, left + half, top + half))
    image.paste(GREEN, (left + half, top, left + side, top + half))
    image.paste(YELLOW, (left + half, top + half, left + side, top + side))
    image.paste(BLUE, (left, top + half, left + half, top + side))
    return image


# What the centered square shows, clockwise from top-left, once the EXIF orientation is applied.
ORIENTED_QUADRANTS = {
    1: (RED, GREEN, YELLOW, BLUE),
    3: (YELLOW, BLUE, RED, GREEN),  # rotated 180
    6: (BLUE, RED, GREEN, YELLOW),  # rotated 90 clockwise
    8: (GREEN, YELLOW, BLUE, RED),  # rotated 90 counter-clockwise
}


def metadata_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Secret Camera"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 0.0)
    return exif


@functools.cache
def icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def with_metadata(image: Image.Image, fmt: str, orientation: int | None = None, **params) -> bytes:
    """The image carrying EXIF (camera, GPS, optionally an orientation), an ICC profile and XMP (and text for
    PNG)."""
    params = dict(params, exif=metadata_exif(orientation), icc_profile=icc_profile())
    if fmt in ("JPEG", "WEBP"):
        params["xmp"] = XMP
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "secret comment")
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        params["pnginfo"] = info
    return encode(image, fmt, **params)


def oriented_jpeg(orientation: int = 6) -> bytes:
    """A 600x200 JPEG (quadrants) with EXIF orientation, GPS, an ICC profile and XMP."""
    return with_metadata(quadrants(), "JPEG", orientation, quality=95)


def animated(fmt: str, colors=(RED, BLUE, GREEN), size: tuple[int, int] = (64, 48)) -> bytes:
    frames = [Image.new("RGB", size, color) for color in colors]
    params = {"lossless": True} if fmt == "WEBP" else {}
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A complete, valid 1-bit grayscale PNG of width x height black pixels: a few KB that decode to width*height
    pixels (what Image.new('1', size).save(format='PNG') makes, without building the image in memory first)."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row * 100) for _ in range(height // 100))
    body += compressor.compress(row * (height % 100)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_dimensions(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _one_pixel_gif() -> bytearray:
    data = bytearray(encode(Image.new("P", (1, 1), 0), "GIF"))
    flags = data[10]
    descriptor = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    assert data[descriptor] == 0x2C, "expected the image descriptor right after the global color table"
    return data


def gif_with_screen(width: int, height: int) -> bytes:
    """A 1x1 GIF whose logical screen claims width x height."""
    data = _one_pixel_gif()
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def gif_with_frame(width: int, height: int) -> bytes:
    """A GIF with a 1x1 logical screen whose (only) frame claims width x height."""
    data = _one_pixel_gif()
    flags = data[10]
    descriptor = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def corrupt_idat_png() -> bytes:
    """A PNG with intact headers whose compressed pixel data is overwritten with garbage (CRC fixed up)."""
    data = encode(patterned((200, 200), 99), "PNG", compress_level=9)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    body = bytearray(data[start : start + length])
    rng = random.Random(7)
    for index in range(2, len(body)):
        body[index] = rng.randrange(256)
    return data[: start - 8] + _png_chunk(b"IDAT", bytes(body)) + data[start + length + 4 :]


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<rect width="64" height="64" fill="red"/></svg>\n'
)
XML = b'<?xml version="1.0"?>\n<photo><pixel x="0" y="0" color="red"/></photo>\n'
TEXT = b"This is not an image.\nJust a text file someone renamed to photo.png.\n"


def random_bytes(size: int = 4096, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


# Not an image (or not an accepted one): name -> factory.
REJECTED = {
    "truncated-jpeg": lambda: truncated(encode(patterned((400, 300), 1), "JPEG", quality=90)),
    "truncated-png": lambda: truncated(encode(patterned((400, 300), 2), "PNG")),
    "truncated-gif": lambda: truncated(encode(patterned((400, 300), 3).convert("P"), "GIF"), 0.3),
    "truncated-webp": lambda: truncated(encode(patterned((400, 300), 4), "WEBP")),
    "png-signature-then-garbage": lambda: b"\x89PNG\r\n\x1a\n" + random_bytes(2000, 2),
    "jpeg-signature-then-garbage": lambda: b"\xff\xd8\xff\xe0" + random_bytes(2000, 3),
    "corrupt-png-data": corrupt_idat_png,
    "random-bytes": random_bytes,
    "empty-ish": lambda: b"\0",
    "text": lambda: TEXT,
    "bmp": lambda: encode(patterned((64, 64), 5), "BMP"),
    "tiff": lambda: encode(patterned((64, 64), 6), "TIFF"),
    "ico": lambda: encode(patterned((64, 64), 7), "ICO"),
    "ppm": lambda: encode(patterned((64, 64), 8), "PPM"),
    "svg": lambda: SVG,
    "xml": lambda: XML,
    "png-bomb-20000x20000": lambda: png_bomb(20000, 20000),
    "png-over-pixel-limit": lambda: png_bomb(8000, images.MAX_PIXELS // 8000 + 1),
    "gif-huge-screen": lambda: gif_with_screen(65535, 65535),
    "gif-screen-over-pixel-limit": lambda: gif_with_screen(7000, 7000),
    "gif-huge-frame": lambda: gif_with_frame(65535, 65535),
}


# ------------------------------------------------------------------------------------------------ checks


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_close(actual, expected, tolerance: int = TOLERANCE) -> None:
    actual = tuple(actual)[: len(expected)]
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


def assert_clean_webp(data: bytes, side: int) -> Image.Image:
    """A still WebP square of `side` px without any metadata."""
    image = decode(data)
    assert image.format == "WEBP"
    assert image.size == (side, side)
    assert not getattr(image, "is_animated", False)
    assert len(image.getexif()) == 0
    for key in ("exif", "icc_profile", "xmp"):
        assert key not in image.info, f"{key} survived"
    # The RIFF container has no metadata chunks at all (EXIF, ICC profile, XMP).
    for chunk in (b"EXIF", b"ICCP", b"XMP "):
        assert chunk not in data
    for secret in (b"Secret Camera", b"secret author", b"secret comment"):
        assert secret not in data
    return image


def corner_colors(image: Image.Image) -> tuple:
    """The colors a quarter of the way in from each corner, clockwise from top-left."""
    rgb = image.convert("RGB")
    low, high = rgb.width // 4, rgb.width * 3 // 4
    return tuple(rgb.getpixel(point) for point in ((low, low), (high, low), (high, high), (low, high)))


def assert_corners(image: Image.Image, expected) -> None:
    for actual, wanted in zip(corner_colors(image), expected, strict=True):
        assert_close(actual, wanted)


def center(image: Image.Image):
    return image.getpixel((image.width // 2, image.height // 2))


# ------------------------------------------------------------------------------------------------ tests


FORMATS = {
    "png-rgb": (lambda: solid(RED, fmt="PNG"), RED),
    "png-gray": (lambda: solid(128, fmt="PNG", mode="L"), GRAY),
    "png-1bit": (lambda: solid(1, fmt="PNG", mode="1"), (255, 255, 255)),
    "png-palette": (lambda: encode(Image.new("RGB", (64, 64), BLUE).convert("P"), "PNG"), BLUE),
    "jpeg": (lambda: solid(GREEN, fmt="JPEG", quality=95), GREEN),
    "jpeg-progressive": (lambda: solid(BLUE, fmt="JPEG", quality=95, progressive=True), BLUE),
    "jpeg-cmyk": (lambda: solid((0, 255, 255, 0), fmt="JPEG", mode="CMYK", quality=95), RED),
    "jpeg-grayscale": (lambda: solid(128, fmt="JPEG", mode="L", quality=95), GRAY),
    "gif": (lambda: encode(Image.new("RGB", (64, 64), YELLOW).convert("P"), "GIF"), YELLOW),
    "webp-lossy": (lambda: solid(MAGENTA, fmt="WEBP", quality=90), MAGENTA),
    "webp-lossless": (lambda: solid(GREEN, fmt="WEBP", lossless=True), GREEN),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_accepted_format_becomes_a_clean_square_webp(name):
    factory, color = FORMATS[name]
    photo = images.normalize(factory())
    image = assert_clean_webp(photo.data, 64)
    assert (photo.width, photo.height) == (64, 64)
    assert_close(center(image.convert("RGB")), color)


SIZES = [
    ((1, 1), 1),
    ((3, 2), 2),
    ((2, 5), 2),
    ((300, 100), 100),
    ((100, 300), 100),
    ((512, 512), 512),
    ((513, 513), 512),
    ((700, 600), 512),
    ((4000, 3000), 512),
]


SIZE_CASES = [
    pytest.param(fmt, size, side, id=f"{fmt}-{size[0]}x{size[1]}")
    for fmt in ("PNG", "JPEG", "GIF", "WEBP")
    for size, side in SIZES
    # One large PNG and one large JPEG are enough: the large cases take seconds.
    if size != (4000, 3000) or fmt in ("PNG", "JPEG")
]


@pytest.mark.parametrize(("fmt", "size", "side"), SIZE_CASES)
def test_sizes_become_squares_of_at_most_512(fmt, size, side):
    image = patterned(size, seed=size[0] * 7 + size[1])
    if fmt == "GIF":
        image = image.convert("P")
    photo = images.normalize(encode(image, fmt))
    assert_clean_webp(photo.data, side)
    assert (photo.width, photo.height) == (side, side)


@pytest.mark.parametrize("vertical", [False, True], ids=["wide", "tall"])
def test_the_centered_square_is_kept(vertical):
    size = (60, 180) if vertical else (180, 60)
    photo = images.normalize(encode(bands(size, (RED, GREEN, BLUE), vertical=vertical), "PNG"))
    image = assert_clean_webp(photo.data, 60).convert("RGB")
    for point in ((1, 1), (58, 1), (1, 58), (58, 58), (30, 30)):
        assert_close(image.getpixel(point), GREEN)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied_to_jpeg(orientation):
    photo = images.normalize(oriented_jpeg(orientation))
    image = assert_clean_webp(photo.data, 200)
    assert_corners(image, ORIENTED_QUADRANTS[orientation])


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_orientation_is_applied_to_png_and_webp(fmt):
    params = {"lossless": True} if fmt == "WEBP" else {}
    photo = images.normalize(with_metadata(quadrants(), fmt, 6, **params))
    assert_corners(assert_clean_webp(photo.data, 200), ORIENTED_QUADRANTS[6])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_all_metadata_is_stripped(fmt):
    data = with_metadata(patterned((120, 80), 11), fmt)
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == GPS_LATITUDE
    assert "icc_profile" in source.info and "exif" in source.info
    photo = images.normalize(data)
    assert_clean_webp(photo.data, 80)
    assert_clean_webp(photo.preview, decode(photo.preview).width)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_use_their_first_frame(fmt):
    data = animated(fmt)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    photo = images.normalize(data)
    image = assert_clean_webp(photo.data, 48)
    assert_close(center(image.convert("RGB")), RED)
    assert_close(center(decode(photo.preview).convert("RGB")), RED)


def half_transparent(mode: str) -> Image.Image:
    """Left half fully transparent, right half opaque blue."""
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (32, 0, 64, 64))
    if mode == "P":  # palette index 0 (red) is the transparent one
        palette = Image.new("P", (64, 64), 0)
        palette.putpalette([*RED, *BLUE])
        palette.paste(1, (32, 0, 64, 64))
        return palette
    return image if mode == "RGBA" else image.convert(mode)


TRANSPARENT = {
    "png-rgba": lambda: encode(half_transparent("RGBA"), "PNG"),
    "png-la": lambda: encode(half_transparent("LA"), "PNG"),
    "png-palette-trns": lambda: encode(half_transparent("P"), "PNG", transparency=0),
    "gif-transparency": lambda: encode(half_transparent("P"), "GIF", transparency=0),
    "webp-alpha": lambda: encode(half_transparent("RGBA"), "WEBP", lossless=True),
}


@pytest.mark.parametrize("name", TRANSPARENT)
def test_transparency_is_kept(name):
    data = TRANSPARENT[name]()
    source = Image.open(io.BytesIO(data))
    assert source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info, (source.mode, source.info)
    image = decode(images.normalize(data).data).convert("RGBA")
    assert image.getpixel((8, 32))[3] <= 16, "the transparent half became opaque"
    assert image.getpixel((56, 32))[3] >= 240


def test_color_key_transparency_of_rgb_png_is_kept():
    """An RGB PNG can mark one color transparent (tRNS). Those pixels are transparent in every viewer; the photo
    must not show them as an opaque magenta background."""
    image = Image.new("RGB", (64, 64), MAGENTA)
    image.paste(BLUE, (32, 0, 64, 64))
    data = encode(image, "PNG", transparency=MAGENTA)
    assert Image.open(io.BytesIO(data)).info["transparency"] == MAGENTA
    stored = decode(images.normalize(data).data).convert("RGBA")
    assert stored.getpixel((8, 32))[3] <= 16, f"the color-keyed background is opaque: {stored.getpixel((8, 32))}"
    assert_close(stored.getpixel((56, 32)), (*BLUE, 255))


def test_16_bit_png_keeps_its_tones():
    """A 16-bit grayscale PNG at half intensity is mid-gray, not white."""
    data = encode(Image.new("I;16", (64, 64), 32768), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    stored = decode(images.normalize(data).data).convert("RGB")
    assert_close(center(stored), GRAY)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: solid(RED), id="solid"),
        pytest.param(lambda: encode(patterned((900, 700), 21), "JPEG"), id="blocks"),
        pytest.param(
            lambda: encode(Image.frombytes("RGBA", (600, 600), random_bytes(600 * 600 * 4, 9)), "PNG"), id="rgba-noise"
        ),
    ],
)
def test_preview_is_a_tiny_image(data):
    photo = images.normalize(data())
    assert 0 < len(photo.preview) <= PREVIEW_MAX_BYTES
    assert len(photo.preview) < len(photo.data) or len(photo.data) <= PREVIEW_MAX_BYTES
    preview = decode(photo.preview)
    assert preview.width == preview.height and 0 < preview.width <= 64


def test_normalizing_is_deterministic():
    """The same upload gives the same bytes: identical photos share one blob in the content-addressed store."""
    data = encode(patterned((300, 200), 31), "JPEG")
    first, second = images.normalize(data), images.normalize(data)
    assert first.data == second.data and first.preview == second.preview


def test_factories_make_what_they_claim():
    """The rejected inputs below are what their names say (so each rejection test can tell something)."""
    assert png_dimensions(png_bomb(20000, 20000)) == (20000, 20000) and len(png_bomb(20000, 20000)) < 100_000
    small = decode(png_bomb(300, 201))
    assert small.size == (300, 201) and small.mode == "1"
    assert decode(gif_with_screen(3, 2)).size == (3, 2)
    gif_header = gif_with_screen(65535, 65535)
    assert struct.unpack("<HH", gif_header[6:10]) == (65535, 65535)
    assert Image.open(io.BytesIO(REJECTED["bmp"]())).format == "BMP"
    assert Image.open(io.BytesIO(REJECTED["tiff"]())).format == "TIFF"
    for name in ("truncated-jpeg", "truncated-png", "corrupt-png-data"):
        with pytest.raises((OSError, SyntaxError, ValueError, zlib.error)):
            decode(REJECTED[name]())


@pytest.mark.parametrize("name", REJECTED)
def test_rejected(name):
    with pytest.raises(images.ImageRejected) as info:
        images.normalize(REJECTED[name]())
    assert str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: png_bomb(8000, images.MAX_PIXELS // 8000 + 1), id="png"),
        pytest.param(lambda: gif_with_screen(7000, 7000), id="gif"),
    ],
)
def test_too_many_pixels_are_refused_from_the_header(monkeypatch, data):
    """Below Pillow's own bomb limit but above ours: refused before a single pixel is decoded."""

    def no_decoding(self):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(images.ImageRejected, match="pixels"):
        images.normalize(data())
