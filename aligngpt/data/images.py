"""Opening benchmark images safely: clear errors naming the item, decompression-bomb guard.

Policy for a bad image during ``run`` (corrupt, truncated, empty, missing, or above
:data:`MAX_PIXELS`): the run stops with one :class:`DataError` naming the question id and the
file; it is never skipped silently, since a benchmark score over fewer questions is not the
benchmark's score. Batches answered before it stay in the journal (``run_state.json`` says
``failed`` and why), so after the file is fixed the same command resumes where it stopped.
CMYK, palette, 1-bit, grey+alpha and RGBA images are converted to RGB by PIL as the reference
does; 16-bit greyscale is scaled to 8 bits first (PIL's own conversion would clip it to white).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from contextlib import contextmanager
from typing import Iterator

from PIL import Image, ImageFile

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


@contextmanager
def truncated_images_allowed() -> Iterator[None]:
    """PIL's ``LOAD_TRUNCATED_IMAGES`` for the reference's training loaders, scoped so that an
    evaluation later in the same process (e.g. the trainer callback) still refuses truncated files."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
