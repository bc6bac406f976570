"""Still images (DetectModerationLabels) as model frames: read, decode, bound, upright, scale.

It lives in engine/video because an image must reach the classifier exactly as a video frame
does: the decoded RGB picture goes through the same swscale scaler (`scaling.UprightScaler`,
bilinear, straight to the model's input size), so a picture sent as an image and the same
picture shown in a lossless video give the same frame and the same scores. Only the decoding
differs: Pillow instead of PyAV, JPEG and PNG only, like Rekognition.

Images are untrusted input. The header is checked against `ImageLimits` before any pixel is
decoded, so a small file declaring a huge picture never allocates it; a damaged, truncated or
unsupported file is InvalidImageError, an over-limit one ImageTooLargeError (the jobs layer
answers them as the contract's InvalidImageFormatException / ImageTooLargeException).
Knows nothing about HTTP, jobs or Ray: bytes in, a uint8 frame out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.video.scaling import UprightScaler

SUPPORTED_FORMATS = ("JPEG", "PNG")
"""What Rekognition accepts; Pillow is told to try no other decoder."""

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class InvalidImageError(ValueError):
    """Not a JPEG or PNG, empty, damaged or truncated; the message says which."""


class ImageTooLargeError(ValueError):
    """Over one of the ImageLimits; the message quotes the size and the limit."""


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on one image (EngineSettings.max_image_* fields)."""

    max_bytes: int
    """Largest encoded image, in bytes."""
    max_side_px: int
    """Largest width and largest height."""
    max_pixels: int
    """Largest width x height: what decoding may allocate (about 3 bytes a pixel, twice)."""


def image_frame(data: bytes, output_size: tuple[int, int], limits: ImageLimits) -> np.ndarray:
    """The image as the classifier's input: uint8 RGB (H, W, 3) of `output_size` = (H, W)."""
    return scale_to_frame(decode_image(data, limits), output_size)


def decode_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """Decode a JPEG or PNG to upright uint8 RGB (height, width, 3).

    EXIF orientation is applied (phone photos are stored sideways); grey, palette, CMYK and
    16-bit pictures become RGB; transparency is composited over white, as a page shows it.
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"The image is {len(data)} bytes; the maximum is {limits.max_bytes} bytes"
        )
    if not data:
        raise InvalidImageError("The image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            _check_dimensions(image.size, limits)
            image.load()
            return np.asarray(_as_rgb(ImageOps.exif_transpose(image)))
    except (ImageTooLargeError, InvalidImageError):
        raise
    except Image.DecompressionBombError:  # Pillow's own guard, before ours: far over any limit
        raise ImageTooLargeError(
            f"The image declares far more pixels than the maximum of {limits.max_pixels}"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            "The image is not a JPEG or PNG file (the only formats supported)"
        ) from None
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure means a damaged file
        raise InvalidImageError(
            f"The image could not be decoded; it is damaged or truncated ({_describe(error)})"
        ) from None


def scale_to_frame(rgb: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Scale an upright RGB picture to `output_size` exactly as decode.py scales video frames."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return UprightScaler(output_size, rotation_degrees=0).convert(frame)


def _check_dimensions(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"The image declares no picture ({width}x{height})")
    if width > limits.max_side_px or height > limits.max_side_px:
        raise ImageTooLargeError(
            f"The image is {width}x{height} pixels; width and height may be at most "
            f"{limits.max_side_px} pixels"
        )
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} = {width * height} pixels; the maximum is "
            f"{limits.max_pixels} pixels"
        )


def _as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB whatever the mode: 16-bit grey scaled (not clipped), alpha over white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.uint32 if image.mode == "I" else np.uint16)
        scaled = np.clip(wide, 0, 65535).astype(np.float64) / 257.0
        image = Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
