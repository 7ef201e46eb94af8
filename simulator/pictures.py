"""Small, real, deterministic images for the simulator's responses (Pillow).

Every image is 32×32 pixels whatever `size` was requested, so tests stay fast; the response still echoes the
requested size string. Content is derived from (seed, prompt, index), so the same request gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
from functools import lru_cache

from PIL import Image, ImageDraw

PIXELS = 32
# output_format -> Pillow format name
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def image_b64(*, seed: int, prompt: str, index: int, output_format: str, transparent: bool) -> str:
    """Base64 of a 32×32 image in `output_format`; `index` distinguishes partials (0..) and final images (100+)."""
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).hexdigest()
    return _render(digest, index, output_format, transparent)


@lru_cache(maxsize=512)
def _render(digest: str, index: int, output_format: str, transparent: bool) -> str:
    colours = bytes.fromhex(hashlib.sha256(f"{digest}:{index}".encode()).hexdigest())
    mode = "RGBA" if transparent else "RGB"
    background = (*colours[0:3], 0) if transparent else tuple(colours[0:3])
    img = Image.new(mode, (PIXELS, PIXELS), background)
    draw = ImageDraw.Draw(img)
    for k in range(3):  # three rectangles whose corners come from the hash
        x0, y0, x1, y1 = (colours[4 + 4 * k + j] % PIXELS for j in range(4))
        fill = (*colours[16 + 3 * k : 19 + 3 * k], 255) if transparent else tuple(colours[16 + 3 * k : 19 + 3 * k])
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=fill)
    buf = io.BytesIO()
    img.save(buf, format=PIL_FORMATS[output_format])
    return base64.b64encode(buf.getvalue()).decode("ascii")


def pixel_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an uploaded image; ValueError if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception as exc:  # Pillow raises several types (UnidentifiedImageError, OSError, ...)
        raise ValueError(str(exc)) from exc
