"""Image decoding for DetectModerationLabels (engine/video/image.py), without Ray or a server:
formats, EXIF orientation, colour modes, limits checked before decoding, and frames identical
to the ones the video decoder makes from the same picture."""

from __future__ import annotations

import io
import struct
import zlib

import av
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from engine.errors import InvalidS3ObjectException
from engine.video import decode_segment, plan_segments, probe_video
from engine.video.image import (
    ImageLimits,
    ImageTooLargeError,
    InvalidImageError,
    decode_image,
    image_frame,
    scale_to_frame,
)

LIMITS = ImageLimits(max_bytes=5 * 1024 * 1024, max_side_px=10_000, max_pixels=100_000_000)
EXIF_ORIENTATION = 0x0112


def encode(picture, image_format: str = "PNG", **options) -> bytes:
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def banded_picture(height: int = 60, width: int = 40) -> np.ndarray:
    """White, with a red band on top and a blue band down the left side: any turn or mirror
    moves one of them."""
    picture = np.full((height, width, 3), 255, np.uint8)
    picture[: height // 4] = (255, 0, 0)
    picture[:, : width // 5] = (0, 0, 255)
    return picture


def with_orientation(stored: np.ndarray, orientation: int, image_format: str = "PNG") -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, image_format, exif=exif.tobytes())


def with_declared_size(png: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR claiming another size (and a valid CRC): a header-only bomb."""
    header = png[16:33]  # IHDR data after the 8-byte signature, length and type
    data = struct.pack(">II", width, height) + header[8:13]
    chunk = b"IHDR" + data
    return png[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


# -- formats and damage ---------------------------------------------------------------------


def test_png_decodes_exactly_and_jpeg_closely():
    picture = banded_picture()
    assert np.array_equal(decode_image(encode(picture), LIMITS), picture)
    decoded = decode_image(encode(picture, "JPEG", quality=95), LIMITS)
    assert decoded.shape == picture.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - picture).mean() < 4


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(np.random.default_rng(1).bytes(4096), id="random-bytes"),
        pytest.param(encode(banded_picture(), "GIF"), id="gif"),
        pytest.param(encode(banded_picture(), "BMP"), id="bmp"),
        pytest.param(encode(banded_picture(), "WEBP"), id="webp"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 64, id="jpeg-magic-only"),
    ],
)
def test_what_is_not_a_jpeg_or_png_is_an_invalid_format(data):
    with pytest.raises(InvalidImageError):
        decode_image(data, LIMITS)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_truncated_file_is_an_invalid_format(image_format):
    noisy = np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    whole = encode(noisy, image_format)
    with pytest.raises(InvalidImageError, match="damaged or truncated"):
        decode_image(whole[: len(whole) // 2], LIMITS)


def test_a_png_text_chunk_bomb_is_an_invalid_format():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * (20 * 1024 * 1024), zip=True)  # ~20 KB compressed
    data = encode(banded_picture(), pnginfo=info)
    assert len(data) < 100_000
    with pytest.raises(InvalidImageError):
        decode_image(data, LIMITS)


# -- limits, checked before any pixel is decoded ---------------------------------------------


def test_more_bytes_than_allowed_is_too_large():
    data = encode(banded_picture())
    with pytest.raises(ImageTooLargeError, match=f"{len(data)} bytes"):
        decode_image(data, ImageLimits(len(data) - 1, 10_000, 100_000_000))
    assert decode_image(data, ImageLimits(len(data), 10_000, 100_000_000)).shape == (60, 40, 3)


@pytest.mark.parametrize(
    "width, height", [(10_001, 10), (10, 10_001), (60_000, 60_000), (2**31 - 1, 2**31 - 1)]
)
def test_a_header_declaring_too_many_pixels_is_refused_without_decoding(width, height):
    bomb = with_declared_size(encode(banded_picture()), width, height)
    assert len(bomb) < 1000
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb, LIMITS)


def test_the_pixel_budget_is_its_own_limit():
    data = encode(banded_picture(100, 100))
    with pytest.raises(ImageTooLargeError, match="100x100 = 10000 pixels"):
        decode_image(data, ImageLimits(len(data), 10_000, 9_999))


# -- orientation and colour modes ------------------------------------------------------------


@pytest.mark.parametrize(
    "orientation, stored_from_upright",
    [
        (1, lambda p: p),
        (2, lambda p: p[:, ::-1]),  # mirrored
        (3, lambda p: p[::-1, ::-1]),  # upside down
        (6, lambda p: np.rot90(p, k=1)),  # phone held upright: stored turned left
        (8, lambda p: np.rot90(p, k=-1)),
    ],
)
def test_exif_orientation_is_applied(orientation, stored_from_upright):
    upright = banded_picture()
    stored = np.ascontiguousarray(stored_from_upright(upright))
    assert np.array_equal(decode_image(with_orientation(stored, orientation), LIMITS), upright)


def test_exif_orientation_in_a_jpeg():
    upright = banded_picture(120, 80)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    decoded = decode_image(with_orientation(stored, 6, "JPEG"), LIMITS).astype(int)
    assert decoded.shape == upright.shape
    assert np.abs(decoded - upright).mean() < 6


def test_grey_palette_and_one_bit_become_rgb():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    assert np.array_equal(decode_image(encode(grey), LIMITS), np.stack([grey] * 3, axis=-1))
    picture = banded_picture()
    palette = Image.fromarray(picture).quantize(colors=4)
    assert np.array_equal(decode_image(encode(palette), LIMITS), picture)
    bits = Image.fromarray(grey >= 128)
    expected = np.where(grey >= 128, 255, 0).astype(np.uint8)
    assert np.array_equal(decode_image(encode(bits), LIMITS)[..., 0], expected)


def test_transparency_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere underneath
    rgba[:2, :, 3] = 255  # top half opaque, bottom half fully transparent
    decoded = decode_image(encode(rgba), LIMITS)
    assert np.array_equal(decoded[:2], np.full((2, 4, 3), (200, 0, 0), np.uint8))
    assert np.array_equal(decoded[2:], np.full((2, 4, 3), 255, np.uint8))
    grey_alpha = Image.fromarray(rgba[..., [0, 3]], mode="LA")
    assert np.array_equal(decode_image(encode(grey_alpha), LIMITS)[2:], decoded[2:])


def test_sixteen_bit_grey_is_scaled_not_clipped():
    wide = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    decoded = decode_image(encode(Image.fromarray(wide)), LIMITS)
    assert np.array_equal(decoded[..., 0], np.rint(wide / 257).astype(np.uint8))
    assert decoded.max() > 200  # clipping would have made nearly everything 255


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.fromarray(banded_picture()).convert("CMYK")
    decoded = decode_image(encode(cmyk, "JPEG", quality=95), LIMITS).astype(int)
    assert np.abs(decoded - banded_picture()).mean() < 6


# -- the frame the model gets ------------------------------------------------------------------


def test_image_frame_has_the_model_input_size():
    frame = image_frame(encode(banded_picture(300, 200)), (224, 224), LIMITS)
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8
    assert tuple(frame[10, 112]) == (255, 0, 0) and tuple(frame[200, 10]) == (0, 0, 255)


def test_an_image_and_the_same_picture_as_a_lossless_video_frame_are_identical(tmp_path):
    """Both go through decode.py's scaler: the model sees the same pixels either way."""
    picture = np.random.default_rng(5).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    picture[:24] = (255, 0, 0)
    path = tmp_path / "still.mp4"
    with av.open(str(path), "w") as container:  # H.264 in MP4, lossless RGB
        stream = container.add_stream("libx264rgb", rate=1)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "rgb24"
        stream.options = {"qp": "0"}
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    probe = probe_video(str(path))
    batch = decode_segment(str(path), probe, plan_segments(probe, 20_000)[0], 1000, (224, 224))
    assert np.array_equal(image_frame(encode(picture), (224, 224), LIMITS), batch.frames[0])
    assert np.array_equal(scale_to_frame(picture, (224, 224)), batch.frames[0])


# -- reading an image object -------------------------------------------------------------------


def test_an_image_object_is_read_with_a_bound(tmp_path):
    from engine.storage.base import ObjectRef
    from engine.storage.local import LocalObjectStore

    store = LocalObjectStore(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "image.png").write_bytes(b"x" * 100)
    assert store.get_bytes(ObjectRef("b", "image.png"), max_bytes=100) == b"x" * 100
    assert store.get_bytes(ObjectRef("b", "image.png"), max_bytes=60) == b"x" * 60
    assert store.get_bytes(ObjectRef("b", "image.png")) == b"x" * 100
    with pytest.raises(InvalidS3ObjectException, match="missing.png"):
        store.get_bytes(ObjectRef("b", "missing.png"), max_bytes=100)
