"""The toy world: scenes of simple coloured shapes (and sometimes a word), sampled and drawn.

A :class:`Scene` is the single source of truth: every caption, question and answer of the toy
data is derived from it, so answers are exact. Scenes are sampled with an explicit
``numpy.random.Generator`` (never global state) and drawn by :func:`render_scene`, a pure
function of the scene and the image size, so the same seed gives byte-identical files.

Layout: the image is a 3x3 grid of cells; each object sits in its own cell (no overlaps), and
an optional word fills one whole row. Shape frequencies are deliberately uneven and some shapes
prefer to appear together (``PARTNERS``), so POPE's "popular" (frequent) and "adversarial"
(co-occurring) negatives mean something in this world too.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import font

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "cross", "hexagon", "oval")
#: Relative frequency of each shape as the first object of a scene (POPE "popular" uses this).
SHAPE_WEIGHTS: dict[str, float] = {
    "circle": 22, "square": 18, "triangle": 16, "star": 12,
    "diamond": 10, "cross": 9, "hexagon": 7, "oval": 6,
}
#: Shapes that tend to co-occur (POPE "adversarial" negatives come from here).
PARTNERS: dict[str, str] = {
    "circle": "oval", "oval": "circle", "square": "diamond", "diamond": "square",
    "triangle": "star", "star": "triangle", "cross": "hexagon", "hexagon": "cross",
}
#: Number of corners, for the "knowledge" questions (a circle and an oval have none).
SHAPE_SIDES: dict[str, int] = {
    "circle": 0, "square": 4, "triangle": 3, "star": 10, "diamond": 4, "cross": 12, "hexagon": 6, "oval": 0,
}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 225),
    "yellow": (235, 210, 40), "purple": (150, 60, 190), "orange": (245, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (18, 18, 18), "gray": (128, 128, 128), "white": (245, 245, 245),
}
SIZES: tuple[str, ...] = ("small", "large")
#: Grid cell -> position phrase used in captions and answers.
POSITION_NAMES: dict[tuple[int, int], str] = {
    (0, 0): "top left", (0, 1): "top", (0, 2): "top right",
    (1, 0): "left", (1, 1): "center", (1, 2): "right",
    (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right",
}
CELLS: tuple[tuple[int, int], ...] = tuple(POSITION_NAMES)
#: Upper-case words the block font can draw, used for OCR-style scenes.
WORDS: tuple[str, ...] = (
    "CAT", "DOG", "SUN", "SKY", "BUS", "CAR", "MAP", "TEA", "ZOO", "BOX",
    "STOP", "OPEN", "SALE", "MILK", "BOOK", "FISH", "TREE", "PARK", "CAFE", "BANK",
    "TAXI", "EXIT", "RAIN", "MOON", "BIRD", "FROG", "LAMP", "SHOP", "GOLD", "KING",
)

Size = Union[int, Sequence[int]]
SUPERSAMPLE = 4


@dataclass(frozen=True)
class ToyObject:
    shape: str
    color: str
    size: str
    row: int
    col: int
    dx: float = 0.0
    """Jitter inside the cell, as a fraction (-1..1) of the free room; rendering only."""
    dy: float = 0.0

    @property
    def cell(self) -> tuple[int, int]:
        return (self.row, self.col)

    @property
    def position(self) -> str:
        return POSITION_NAMES[(self.row, self.col)]


@dataclass(frozen=True)
class ToyText:
    text: str
    color: str
    row: int


@dataclass(frozen=True)
class Scene:
    objects: tuple[ToyObject, ...]
    background: str
    text: Optional[ToyText] = None
    blur: bool = False
    """A heavily blurred photo: nothing can be read or told apart (VizWiz 'unanswerable')."""

    def to_dict(self) -> dict:
        return {
            "background": self.background,
            "objects": [asdict(o) for o in self.objects],
            "text": None if self.text is None else asdict(self.text),
            "blur": self.blur,
        }

    @staticmethod
    def from_dict(d: dict) -> "Scene":
        return Scene(
            objects=tuple(ToyObject(**o) for o in d["objects"]),
            background=d["background"],
            text=None if d.get("text") is None else ToyText(**d["text"]),
            blur=bool(d.get("blur", False)),
        )

    # --- facts used by captions and questions -------------------------------------------------
    def shapes(self) -> list[str]:
        """Distinct shapes in first-appearance order."""
        seen: list[str] = []
        for o in self.objects:
            if o.shape not in seen:
                seen.append(o.shape)
        return seen

    def count(self, shape: Optional[str] = None, color: Optional[str] = None) -> int:
        return sum(1 for o in self.objects if (shape is None or o.shape == shape) and (color is None or o.color == color))

    def has(self, shape: str) -> bool:
        return any(o.shape == shape for o in self.objects)


def rng_for(seed: int, *names: str | int) -> np.random.Generator:
    """An independent generator for one stream (task, split, ...): adding a stream never shifts another."""
    words = [int(seed) & 0xFFFFFFFF]
    for name in names:
        data = str(name).encode("utf-8")
        # FNV-1a, 32 bit: stable across Python runs (unlike hash()).
        h = 0x811C9DC5
        for b in data:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        words.append(h)
    return np.random.default_rng(np.random.SeedSequence(words))


def _weighted_choice(rng: np.random.Generator, items: Sequence[str], weights: Sequence[float]) -> str:
    w = np.asarray(weights, dtype=float)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def sample_shapes(rng: np.random.Generator, n_distinct: int, exclude: Sequence[str] = ()) -> list[str]:
    """Distinct shapes: the first by frequency, each next one a partner of a chosen shape half the time."""
    chosen: list[str] = []
    while len(chosen) < n_distinct:
        free = [s for s in SHAPES if s not in chosen and s not in exclude]
        if not free:
            raise ValueError("not enough shapes to choose from")
        partners = [PARTNERS[s] for s in chosen if PARTNERS[s] in free]
        if partners and rng.random() < 0.5:
            chosen.append(partners[int(rng.integers(len(partners)))])
        else:
            chosen.append(_weighted_choice(rng, free, [SHAPE_WEIGHTS[s] for s in free]))
    return chosen


def sample_scene(
    rng: np.random.Generator,
    *,
    n_objects: Optional[int] = None,
    max_objects: int = 4,
    n_distinct: Optional[int] = None,
    word: Optional[str] = None,
    word_prob: float = 0.0,
    blur: bool = False,
    background: Optional[str] = None,
) -> Scene:
    """Draw one scene.

    ``n_objects`` (default 1..``max_objects``) objects in distinct cells; ``n_distinct`` fixes the
    number of different shapes (the rest repeat them, for counting questions). A word is placed
    when ``word`` is given, or with probability ``word_prob`` (then drawn from ``WORDS``).
    """
    bg = background or list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    text: Optional[ToyText] = None
    if word is None and word_prob > 0 and rng.random() < word_prob:
        word = WORDS[int(rng.integers(len(WORDS)))]
    if word is not None:
        font.check_text(word)
        text = ToyText(text=word, color=list(COLORS)[int(rng.integers(len(COLORS)))], row=int(rng.integers(3)))
    cells = [c for c in CELLS if text is None or c[0] != text.row]
    if n_objects is None:
        n_objects = int(rng.integers(1, max_objects + 1))
    if n_objects < 1:
        raise ValueError("a scene needs at least one object")
    n_objects = min(n_objects, len(cells))
    if n_distinct is None:
        n_distinct = n_objects
        if n_objects > 1:
            # Repeat a shape now and then so "how many" has answers above one.
            n_distinct = n_objects - int(rng.binomial(n_objects - 1, 0.3))
    n_distinct = max(1, min(n_distinct, n_objects))
    shapes = sample_shapes(rng, n_distinct)
    for _ in range(n_objects - n_distinct):
        shapes.append(shapes[int(rng.integers(n_distinct))])
    order = rng.permutation(len(cells))[:n_objects]
    objects = []
    palette = list(COLORS)
    for i, shape in enumerate(shapes):
        twin = next((o for o in objects if o.shape == shape), None)
        if twin is not None and rng.random() < 0.5:
            color = twin.color
        else:
            color = palette[int(rng.integers(len(palette)))]
        row, col = cells[int(order[i])]
        objects.append(
            ToyObject(
                shape=shape,
                color=color,
                size=SIZES[int(rng.integers(2))],
                row=row,
                col=col,
                dx=round(float(rng.uniform(-1, 1)), 2),
                dy=round(float(rng.uniform(-1, 1)), 2),
            )
        )
    objects.sort(key=lambda o: (o.row, o.col))  # reading order: captions list top-left first
    return Scene(objects=tuple(objects), background=bg, text=text, blur=blur)


# --- rendering --------------------------------------------------------------------------------

def _wh(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    w, h = size
    return int(w), int(h)


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)]
    if shape == "hexagon":
        return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -np.pi / 2 + k * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
        return pts
    raise ValueError(shape)


def _draw_object(draw: ImageDraw.ImageDraw, o: ToyObject, box: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = box
    cw, ch = x1 - x0, y1 - y0
    r = min(cw, ch) * (0.40 if o.size == "large" else 0.24)
    room_x, room_y = max(0.0, cw / 2 - r) * 0.6, max(0.0, ch / 2 - r) * 0.6
    cx, cy = (x0 + x1) / 2 + o.dx * room_x, (y0 + y1) / 2 + o.dy * room_y
    fill = COLORS[o.color]
    if o.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif o.shape == "oval":
        draw.ellipse([cx - r, cy - r * 0.55, cx + r, cy + r * 0.55], fill=fill)
    elif o.shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    elif o.shape == "cross":
        t = r * 0.33
        draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
        draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)
    else:
        draw.polygon(_shape_points(o.shape, cx, cy, r), fill=fill)


def _line_scale(text: str, w: int, h: int) -> int:
    """Glyph scale for one line in a third of the image (at least 1: clipped below ~40 px)."""
    return font.fit_scale(text, w - 4, int(h / 3) - 2)


def _draw_line(draw: ImageDraw.ImageDraw, text: str, row: int, fill: tuple[int, int, int], w: int, h: int, ss: int,
               scale: Optional[int] = None) -> None:
    """Draw one line of block text centred in grid row ``row``, on the output pixel grid."""
    band_h = h / 3
    scale = scale or _line_scale(text, w, h)
    px = scale * ss
    tw = font.text_width(text, scale) * ss
    x0 = int(round((w * ss - tw) / 2 / ss)) * ss  # aligned to output pixels: crisp glyphs
    y0 = int(round(band_h * row + (band_h - font.GLYPH_H * scale) / 2)) * ss
    for gx, gy in font.ink_cells(text):
        draw.rectangle([x0 + gx * px, y0 + gy * px, x0 + (gx + 1) * px - 1, y0 + (gy + 1) * px - 1], fill=fill)


def render_scene(scene: Scene, size: Size = 48) -> Image.Image:
    """Draw ``scene`` as an RGB image (``size`` = side or ``(width, height)``); deterministic."""
    w, h = _wh(size)
    ss = SUPERSAMPLE
    img = Image.new("RGB", (w * ss, h * ss), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    cw, ch = w * ss / 3, h * ss / 3
    for o in scene.objects:
        _draw_object(draw, o, (o.col * cw, o.row * ch, (o.col + 1) * cw, (o.row + 1) * ch))
    if scene.text is not None:
        _draw_line(draw, scene.text.text, scene.text.row, COLORS[scene.text.color], w, h, ss)
    img = img.resize((w, h), Image.BOX)
    if scene.blur:
        img = img.filter(ImageFilter.GaussianBlur(radius=max(w, h) / 10))
    return img


def render_text_card(text: str, *, color: str = "black", background: str = "white", size: Size = 48,
                     lines: Optional[Sequence[str]] = None) -> Image.Image:
    """An image that shows only text (1-3 lines), e.g. an arithmetic problem for MME cognition."""
    w, h = _wh(size)
    ss = SUPERSAMPLE
    rows = list(lines) if lines is not None else [text]
    if len(rows) > 3:
        raise ValueError("at most 3 lines fit")
    img = Image.new("RGB", (w * ss, h * ss), BACKGROUNDS[background])
    draw = ImageDraw.Draw(img)
    fill = COLORS.get(color) or BACKGROUNDS[color]
    first_row = (3 - len(rows)) // 2
    scale = min(_line_scale(line, w, h) for line in rows)  # one size for all lines
    for i, line in enumerate(rows):
        _draw_line(draw, line, first_row + i, fill, w, h, ss, scale)
    return img.resize((w, h), Image.BOX)


def encode_image(img: Image.Image, fmt: str) -> bytes:
    """PNG or JPEG bytes with fixed settings (same pixels -> same bytes)."""
    buf = io.BytesIO()
    fmt = fmt.upper()
    if fmt in ("JPG", "JPEG"):
        img.save(buf, format="JPEG", quality=95, subsampling=0, optimize=False)
    elif fmt == "PNG":
        img.save(buf, format="PNG", optimize=False, compress_level=6)
    else:
        raise ValueError(f"unsupported image format {fmt!r}")
    return buf.getvalue()


def format_for_name(name: str) -> str:
    """The encoding a file name implies; names without a known extension (SEED) hold JPEG."""
    lower = name.lower()
    if lower.endswith(".png"):
        return "PNG"
    return "JPEG"
