"""Opening benchmark images safely: clear errors naming the item, decompression-bomb guard."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image

from ..errors import DataError
from .base import ImageRef

#: Refuse images above this many pixels (PIL's own guard warns at 89M and fails at 179M).
MAX_PIXELS = 89_478_485


def open_image(ref: ImageRef, *, item: str = "") -> Image.Image:
    """Decode an image file or bytes fully (so truncation shows up here, not in the model)."""
    label = f"{item}: " if item else ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(ref, (bytes, bytearray)):
                if not ref:
                    raise DataError(None, f"{label}image bytes are empty")
                image = Image.open(io.BytesIO(ref))
                where = None
            else:
                path = Path(ref)
                where = path
                if not path.is_file():
                    raise DataError(path, f"{label}image file not found")
                if path.stat().st_size == 0:
                    raise DataError(path, f"{label}image file is empty")
                image = Image.open(path)
            if image.width * image.height > MAX_PIXELS:
                raise DataError(where, f"{label}image is {image.width}x{image.height}: too large (decompression bomb guard)")
            image.load()
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataError(None if isinstance(ref, bytes) else ref, f"{label}image refused: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(None if isinstance(ref, bytes) else ref, f"{label}cannot decode image ({exc})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit before RGB
    return image
