"""Everything said about a toy scene: captions, referring expressions and question families.

All text is derived from the :class:`~aligngpt.toy.world.Scene`, so every answer is exact.
A question family is a function ``(scene, rng) -> QA | None`` (None: the scene cannot support
it, e.g. no word to read). Benchmarks and the instruction data draw from the same families, so
what the model is taught matches what it is tested on, in each benchmark's own wording.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .world import (
    BACKGROUNDS, COLORS, POSITION_NAMES, SHAPE_SIDES, SHAPES, WORDS, Scene, ToyObject,
)

NUM_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PLURALS = {
    "circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
    "diamond": "diamonds", "cross": "crosses", "hexagon": "hexagons", "oval": "ovals",
}
POSITIONS = tuple(POSITION_NAMES.values())
ROW_PHRASES = ("at the top", "in the middle", "at the bottom")

# Toy "knowledge": names the MME celebrity / landmark / scene / translation subtasks ask about.
# Invented for this project; the instruction data teaches them.
CHARACTER_NAMES = {
    "circle": "Bubbles", "square": "Boxer", "triangle": "Peaks", "star": "Twinkle",
    "diamond": "Gem", "cross": "Plus", "hexagon": "Honey", "oval": "Olive",
}
LANDMARK_NAMES = {
    "circle": "the Round Tower", "square": "the Square Hall", "triangle": "the Pyramid Gate",
    "star": "the Star Fort", "diamond": "the Diamond Bridge", "cross": "the Cross Temple",
    "hexagon": "the Hive Palace", "oval": "the Oval Stadium",
}
SCENE_NAMES = {"black": "night sky", "gray": "foggy street", "white": "snowfield"}
SPANISH = {
    "CAT": "gato", "DOG": "perro", "SUN": "sol", "SKY": "cielo", "BUS": "autobus", "CAR": "coche",
    "MAP": "mapa", "TEA": "te", "ZOO": "zoologico", "BOX": "caja", "STOP": "alto", "OPEN": "abierto",
    "SALE": "venta", "MILK": "leche", "BOOK": "libro", "FISH": "pez", "TREE": "arbol", "PARK": "parque",
    "CAFE": "cafeteria", "BANK": "banco", "TAXI": "taxista", "EXIT": "salida", "RAIN": "lluvia",
    "MOON": "luna", "BIRD": "pajaro", "FROG": "rana", "LAMP": "lampara", "SHOP": "tienda",
    "GOLD": "oro", "KING": "rey",
}

# Chinese vocabulary for MMBench-CN (written for this project).
ZH_COLORS = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色", "orange": "橙色",
             "black": "黑色", "gray": "灰色", "white": "白色"}
ZH_SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "diamond": "菱形",
             "cross": "十字形", "hexagon": "六边形", "oval": "椭圆形"}
ZH_POSITIONS = {"top left": "左上角", "top": "上方", "top right": "右上角", "left": "左边", "center": "中间",
                "right": "右边", "bottom left": "左下角", "bottom": "下方", "bottom right": "右下角"}
ZH_YESNO = {"yes": "是", "no": "否"}
ZH_PLACES = {"night sky": "夜空", "foggy street": "雾中的街道", "snowfield": "雪地", "beach": "海滩"}


@dataclass
class QA:
    """One question about a scene (no prompt suffix) with its exact short answer."""

    question: str
    answer: str
    """Canonical short answer: lower-case word/phrase, digits for numbers, 'yes'/'no'."""
    family: str
    answer_type: str = "other"
    """VQA answer type: 'yes/no', 'number' or 'other'."""
    options: Optional[list[str]] = None
    """Candidate answers for multiple choice (the answer among them), in random order."""
    meta: dict = field(default_factory=dict)
    mc_answer: Optional[str] = None
    """The answer as written among ``options`` when it differs in case (words, names)."""

    @property
    def option_answer(self) -> str:
        return self.mc_answer if self.mc_answer is not None else self.answer

    @property
    def answer_index(self) -> int:
        assert self.options is not None
        return self.options.index(self.option_answer)


# --- small language helpers -------------------------------------------------------------------

def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def where(position: str) -> str:
    """'left' -> 'on the left', 'top left' -> 'in the top left corner'."""
    if position in ("left", "right"):
        return f"on the {position}"
    if position in ("top", "bottom"):
        return f"at the {position}"
    if position == "center":
        return "in the center"
    return f"in the {position} corner"


def join_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def count_phrase(n: int, shape: str) -> str:
    return f"{NUM_WORDS[n]} {shape if n == 1 else PLURALS[shape]}"


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


def ref(scene: Scene, obj: ToyObject, avoid: Sequence[str] = ()) -> str:
    """Shortest phrase (no article) that picks ``obj`` out of ``scene`` unambiguously.

    ``avoid`` lists attributes the phrase must not mention ('color', 'size', 'position'), so a
    question never gives its own answer away ("What color is the red circle?").
    """
    objs = scene.objects

    def unique(pred) -> bool:
        return sum(1 for o in objs if pred(o)) == 1

    candidates = [
        ((), obj.shape, lambda o: o.shape == obj.shape),
        (("color",), f"{obj.color} {obj.shape}", lambda o: o.shape == obj.shape and o.color == obj.color),
        (("size",), f"{obj.size} {obj.shape}", lambda o: o.shape == obj.shape and o.size == obj.size),
        (("size", "color"), f"{obj.size} {obj.color} {obj.shape}",
         lambda o: o.shape == obj.shape and o.color == obj.color and o.size == obj.size),
        (("position",), f"{obj.shape} {where(obj.position)}", lambda o: o is obj),
    ]
    for attrs, phrase, pred in candidates:
        if not set(attrs) & set(avoid) and unique(pred):
            return phrase
    # Only reached when 'position' is avoided and nothing else is unique: fall back to colour+size.
    return f"{obj.size} {obj.color} {obj.shape}"


def is_unique(scene: Scene, obj: ToyObject, avoid: Sequence[str]) -> bool:
    """True when ``ref(scene, obj, avoid)`` really singles ``obj`` out."""
    phrase = ref(scene, obj, avoid)
    return sum(1 for o in scene.objects if ref(scene, o, avoid) == phrase) == 1


def object_phrase(o: ToyObject, *, size: bool = True, position: bool = True) -> str:
    words = ([o.size] if size else []) + [o.color, o.shape]
    phrase = with_article(" ".join(words))
    return f"{phrase} {where(o.position)}" if position else phrase


def text_sentence(scene: Scene) -> str:
    t = scene.text
    if t is None:
        return ""
    return f'The word "{t.text}" is written in {t.color} {ROW_PHRASES[t.row]}.'


# --- captions ---------------------------------------------------------------------------------

_CAPTION_TEMPLATES = (
    "{Body} on a {bg} background.",
    "There is {body} on a {bg} background.",
    "The image shows {body} on a {bg} background.",
    "A {bg} background with {body}.",
)


def caption_full(scene: Scene, rng: np.random.Generator) -> str:
    """One or two sentences naming every object (size, colour, shape, place), background and word."""
    body = join_list([object_phrase(o) for o in scene.objects])
    tpl = _CAPTION_TEMPLATES[int(rng.integers(len(_CAPTION_TEMPLATES)))]
    text = tpl.format(Body=capitalize(body), body=body, bg=scene.background)
    extra = text_sentence(scene)
    return f"{text} {extra}" if extra else text


def caption_partial(scene: Scene, rng: np.random.Generator) -> tuple[str, float]:
    """A true but incomplete caption; returns ``(caption, coverage)`` (share of objects named)."""
    objs = list(scene.objects)
    n = len(objs)
    keep = n - 1 if n > 1 else 1
    if n > 2:
        keep = int(rng.integers(1, n))
    idx = sorted(rng.permutation(n)[:keep].tolist())
    chosen = [objs[i] for i in idx]
    detail = bool(rng.random() < 0.5)
    body = join_list([object_phrase(o, size=detail, position=detail) for o in chosen])
    coverage = len(chosen) / n
    if n == 1:
        # A single object: drop its size and position (and the word) instead of the object.
        body = object_phrase(chosen[0], size=False, position=False)
        coverage = 0.5
    return capitalize(body) + ".", round(coverage, 4)


def perturb_scene(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same layout with every shape, colour and the background changed: a wrong description."""
    absent = [s for s in SHAPES if not scene.has(s)]
    new_objs = []
    mapping: dict[str, str] = {}
    for o in scene.objects:
        if o.shape not in mapping:
            pool = [s for s in absent if s not in mapping.values()] or [s for s in SHAPES if s != o.shape]
            mapping[o.shape] = pool[int(rng.integers(len(pool)))]
        colors = [c for c in COLORS if c != o.color]
        new_objs.append(ToyObject(mapping[o.shape], colors[int(rng.integers(len(colors)))], o.size, o.row, o.col, o.dx, o.dy))
    bgs = [b for b in BACKGROUNDS if b != scene.background]
    text = scene.text
    if text is not None:
        words = [w for w in WORDS if w != text.text]
        text = type(text)(words[int(rng.integers(len(words)))], text.color, text.row)
    return Scene(tuple(new_objs), bgs[int(rng.integers(len(bgs)))], text, scene.blur)


def caption_wrong(scene: Scene, rng: np.random.Generator) -> str:
    return caption_full(perturb_scene(scene, rng), rng)


def detailed_description(scene: Scene) -> str:
    """Several sentences: the answer to 'Describe the image in detail.' and the LLaVA-Bench context."""
    n = len(scene.objects)
    s = [f"The image shows {NUM_WORDS[n]} {'shape' if n == 1 else 'shapes'} on a {scene.background} background."]
    for o in scene.objects:
        s.append(f"{capitalize(with_article(f'{o.size} {o.color} {o.shape}'))} is {where(o.position)}.")
    for shape in scene.shapes():
        k = scene.count(shape)
        if k > 1:
            s.append(f"There are {count_phrase(k, shape)} in total.")
    if scene.text is not None:
        s.append(text_sentence(scene))
    return " ".join(s)


# --- question families ------------------------------------------------------------------------

Family = Callable[[Scene, np.random.Generator], Optional[QA]]


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _options(rng: np.random.Generator, answer: str, pool: Sequence[str], n: int) -> list[str]:
    """``n`` options: the answer plus distinct distractors from ``pool``, shuffled."""
    others = [p for p in dict.fromkeys(pool) if p != answer]
    k = min(n - 1, len(others))
    picked = [others[i] for i in rng.permutation(len(others))[:k]]
    opts = picked + [answer]
    return [opts[i] for i in rng.permutation(len(opts))]


def q_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    return QA(f"What color is the {ref(scene, o, ('color',))}?", o.color, "color",
              options=_options(rng, o.color, list(COLORS), 4), meta={"object": o.cell})


def q_shape_at(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    return QA(f"What shape is {where(o.position)}?", o.shape, "shape_at",
              options=_options(rng, o.shape, list(SHAPES), 4), meta={"object": o.cell})


def q_count(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    shapes = scene.shapes()
    if not shapes:
        return None
    # Mostly shapes that are present (often repeated ones), sometimes an absent one (answer 0).
    repeated = [s for s in shapes if scene.count(s) > 1]
    r = rng.random()
    if repeated and r < 0.5:
        shape = _pick(rng, repeated)
    elif r < 0.9:
        shape = _pick(rng, shapes)
    else:
        shape = _pick(rng, [s for s in SHAPES if s not in shapes])
    n = scene.count(shape)
    pool = [str(i) for i in range(0, 6)]
    return QA(f"How many {PLURALS[shape]} are there in the image?", str(n), "count", "number",
              options=_options(rng, str(n), pool, 4), meta={"shape": shape})


def q_count_all(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    n = len(scene.objects)
    return QA("How many shapes are there in the image?", str(n), "count_all", "number",
              options=_options(rng, str(n), [str(i) for i in range(1, 7)], 4))


def q_exist(scene: Scene, rng: np.random.Generator, present: Optional[bool] = None) -> Optional[QA]:
    if present is None:
        present = bool(rng.random() < 0.5)
    pool = scene.shapes() if present else [s for s in SHAPES if not scene.has(s)]
    if not pool:
        return None
    shape = _pick(rng, pool)
    ans = "yes" if present else "no"
    return QA(f"Is there {with_article(shape)} in the image?", ans, "exist", "yes/no",
              options=["yes", "no"], meta={"shape": shape})


def q_exist_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    if rng.random() < 0.5:
        color, ans = o.color, "yes"
    else:
        wrong = [c for c in COLORS if not any(x.shape == o.shape and x.color == c for x in scene.objects)]
        color, ans = _pick(rng, wrong), "no"
    return QA(f"Is there {with_article(color + ' ' + o.shape)} in the image?", ans, "exist_color", "yes/no",
              options=["yes", "no"], meta={"shape": o.shape, "color": color})


def q_verify_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    r = ref(scene, o, ("color",))
    if rng.random() < 0.5:
        color, ans = o.color, "yes"
    else:
        color, ans = _pick(rng, [c for c in COLORS if c != o.color]), "no"
    return QA(f"Is the {r} {color}?", ans, "verify_color", "yes/no", options=["yes", "no"],
              meta={"object": o.cell, "color": color})


def q_choose_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    r = ref(scene, o, ("color",))
    other = _pick(rng, [c for c in COLORS if c != o.color])
    a, b = (o.color, other) if rng.random() < 0.5 else (other, o.color)
    return QA(f"Is the {r} {a} or {b}?", o.color, "choose_color", options=[a, b], meta={"object": o.cell})


def q_size(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    r = ref(scene, o, ("size",))
    return QA(f"Is the {r} small or large?", o.size, "size", options=["small", "large"], meta={"object": o.cell})


def q_position(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if not scene.objects:
        return None
    o = _pick(rng, scene.objects)
    if not is_unique(scene, o, ("position",)):
        return None  # only its place tells it apart, and that is the answer
    r = ref(scene, o, ("position",))
    return QA(f"Where is the {r} in the image?", o.position, "position",
              options=_options(rng, o.position, list(POSITIONS), 4), meta={"object": o.cell})


def q_side(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    side_objs = [o for o in scene.objects if o.col != 1]
    if not side_objs:
        return None
    o = _pick(rng, side_objs)
    if not is_unique(scene, o, ("position",)):
        return None
    r = ref(scene, o, ("position",))
    ans = "left" if o.col == 0 else "right"
    return QA(f"On which side of the image is the {r}?", ans, "side", options=["left", "right"], meta={"object": o.cell})


def _pairs(scene: Scene, axis: str) -> list[tuple[ToyObject, ToyObject]]:
    out = []
    for a in scene.objects:
        for b in scene.objects:
            if a is b:
                continue
            if axis == "col" and a.col != b.col:
                out.append((a, b))
            if axis == "row" and a.row != b.row:
                out.append((a, b))
    return out


def q_left_of(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    pairs = _pairs(scene, "col")
    if not pairs:
        return None
    a, b = _pick(rng, pairs)
    word = "left" if rng.random() < 0.5 else "right"
    truth = (a.col < b.col) if word == "left" else (a.col > b.col)
    return QA(f"Is the {ref(scene, a)} to the {word} of the {ref(scene, b)}?", "yes" if truth else "no",
              "left_of", "yes/no", options=["yes", "no"], meta={"a": a.cell, "b": b.cell})


def q_above(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    pairs = _pairs(scene, "row")
    if not pairs:
        return None
    a, b = _pick(rng, pairs)
    word = "above" if rng.random() < 0.5 else "below"
    truth = (a.row < b.row) if word == "above" else (a.row > b.row)
    return QA(f"Is the {ref(scene, a)} {word} the {ref(scene, b)}?", "yes" if truth else "no",
              "above", "yes/no", options=["yes", "no"], meta={"a": a.cell, "b": b.cell})


def neighbour(scene: Scene, o: ToyObject, dr: int, dc: int) -> Optional[ToyObject]:
    return next((x for x in scene.objects if x.row == o.row + dr and x.col == o.col + dc), None)


_DIRS = {"left of": (0, -1), "right of": (0, 1), "above": (-1, 0), "below": (1, 0)}


def q_relation_shape(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    """'What shape is directly to the left of the X?' (the neighbouring cell holds exactly one object)."""
    cands = []
    for o in scene.objects:
        for name, (dr, dc) in _DIRS.items():
            n = neighbour(scene, o, dr, dc)
            if n is not None:
                cands.append((o, name, n))
    if not cands:
        return None
    o, name, n = _pick(rng, cands)
    phrase = {"left of": "directly to the left of", "right of": "directly to the right of",
              "above": "directly above", "below": "directly below"}[name]
    return QA(f"What shape is {phrase} the {ref(scene, o)}?", n.shape, "relation_shape",
              options=_options(rng, n.shape, list(SHAPES), 4), meta={"anchor": o.cell, "target": n.cell})


def q_relative_position(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    """'Where is the X relative to the Y?' for objects sharing a row or a column."""
    pairs = [(a, b) for a in scene.objects for b in scene.objects
             if a is not b and (a.row == b.row or a.col == b.col)]
    if not pairs:
        return None
    a, b = _pick(rng, pairs)
    if a.row == b.row:
        ans = "left of" if a.col < b.col else "right of"
    else:
        ans = "above" if a.row < b.row else "below"
    return QA(f"Where is the {ref(scene, a)} relative to the {ref(scene, b)}?", ans, "relative_position",
              options=_options(rng, ans, list(_DIRS), 4), meta={"a": a.cell, "b": b.cell})


def q_same_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if len(scene.objects) < 2:
        return None
    i, j = rng.permutation(len(scene.objects))[:2].tolist()
    a, b = scene.objects[i], scene.objects[j]
    ra, rb = ref(scene, a, ("color",)), ref(scene, b, ("color",))
    ans = "yes" if a.color == b.color else "no"
    return QA(f"Are the {ra} and the {rb} the same color?", ans, "same_color", "yes/no",
              options=["yes", "no"], meta={"a": a.cell, "b": b.cell})


def q_both(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    s1 = _pick(rng, list(SHAPES))
    s2 = _pick(rng, [s for s in SHAPES if s != s1])
    if rng.random() < 0.5 and len(scene.shapes()) >= 2:
        s1, s2 = [scene.shapes()[k] for k in rng.permutation(len(scene.shapes()))[:2].tolist()]
    ans = "yes" if scene.has(s1) and scene.has(s2) else "no"
    return QA(f"Are there both {PLURALS[s1]} and {PLURALS[s2]} in the image?", ans, "both", "yes/no",
              options=["yes", "no"], meta={"shapes": [s1, s2]})


def q_background(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    return QA("What color is the background?", scene.background, "background",
              options=_options(rng, scene.background, list(BACKGROUNDS) + ["blue"], 4))


def q_word(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if scene.text is None:
        return None
    w = scene.text.text
    return QA("What word is written in the image?", w.lower(), "word",
              options=_options(rng, w, list(WORDS), 4), meta={"word": w}, mc_answer=w)


def q_text_color(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if scene.text is None:
        return None
    c = scene.text.color
    return QA("What color is the text in the image?", c, "text_color", options=_options(rng, c, list(COLORS), 4))


def q_first_letter(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if scene.text is None:
        return None
    letter = scene.text.text[0]
    return QA("What is the first letter of the word in the image?", letter.lower(), "first_letter",
              options=_options(rng, letter, list("ABCDEFGHIKLMNOPRST"), 4), mc_answer=letter)


def q_letters(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if scene.text is None:
        return None
    n = len(scene.text.text)
    return QA("How many letters does the word in the image have?", str(n), "letters", "number",
              options=_options(rng, str(n), ["2", "3", "4", "5", "6"], 4))


def q_most_corners(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    shapes = scene.shapes()
    if len(shapes) < 2:
        return None
    best = max(SHAPE_SIDES[s] for s in shapes)
    top = [s for s in shapes if SHAPE_SIDES[s] == best]
    if len(top) != 1:
        return None
    return QA("Which shape in the image has the most corners?", top[0], "most_corners",
              options=_options(rng, top[0], shapes + list(SHAPES), 4))


def q_sides_knowledge(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    """Text-only knowledge: how many corners a shape has (asked about the shape shown, if one)."""
    polys = [s for s in SHAPES if SHAPE_SIDES[s] > 0]
    shape = _pick(rng, polys)
    n = SHAPE_SIDES[shape]
    return QA(f"How many corners does {with_article(shape)} have?", str(n), "sides", "number",
              options=_options(rng, str(n), ["3", "4", "5", "6", "8", "10", "12"], 4), meta={"shape": shape})


def q_character(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if len(scene.objects) != 1:
        return None
    name = CHARACTER_NAMES[scene.objects[0].shape]
    return QA("Who is the character in this image?", name.lower(), "character",
              options=_options(rng, name, list(CHARACTER_NAMES.values()), 4), meta={"name": name},
              mc_answer=name)


def q_landmark(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    if len(scene.objects) != 1:
        return None
    name = LANDMARK_NAMES[scene.objects[0].shape]
    return QA("Which landmark is shown in this picture?", name.lower(), "landmark",
              options=_options(rng, name, list(LANDMARK_NAMES.values()), 4), meta={"name": name},
              mc_answer=name)


def q_scene_kind(scene: Scene, rng: np.random.Generator) -> Optional[QA]:
    name = SCENE_NAMES[scene.background]
    return QA("What kind of place is shown in this picture?", name, "scene_kind",
              options=_options(rng, name, list(SCENE_NAMES.values()) + ["beach"], 4))


FAMILIES: dict[str, Family] = {
    "color": q_color, "shape_at": q_shape_at, "count": q_count, "count_all": q_count_all,
    "exist": q_exist, "exist_color": q_exist_color, "verify_color": q_verify_color,
    "choose_color": q_choose_color, "size": q_size, "position": q_position, "side": q_side,
    "left_of": q_left_of, "above": q_above, "relation_shape": q_relation_shape,
    "relative_position": q_relative_position, "same_color": q_same_color, "both": q_both,
    "background": q_background, "word": q_word, "text_color": q_text_color,
    "first_letter": q_first_letter, "letters": q_letters, "most_corners": q_most_corners,
    "character": q_character, "landmark": q_landmark, "scene_kind": q_scene_kind,
}


def ask(family: str, scene: Scene, rng: np.random.Generator, **kw) -> Optional[QA]:
    return FAMILIES[family](scene, rng, **kw)  # type: ignore[call-arg]


# --- arithmetic cards (MME cognition, MM-Vet math, MMBench structured) -------------------------

def arithmetic(rng: np.random.Generator, ops: str = "+-*") -> tuple[str, int]:
    """A small problem ``'a+b='`` and its value (non-negative, at most two digits per operand)."""
    op = ops[int(rng.integers(len(ops)))]
    if op == "*":
        a, b = int(rng.integers(2, 10)), int(rng.integers(2, 10))
        return f"{a}*{b}=", a * b
    a, b = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    if op == "-":
        a, b = max(a, b), min(a, b)
        return f"{a}-{b}=", a - b
    return f"{a}+{b}=", a + b


# --- human-style answer lists for the soft-accuracy benchmarks ---------------------------------

_VARIANTS = {
    "left": ["left side"], "right": ["right side"], "top": ["top side"], "bottom": ["bottom side"],
    "red": ["dark red"], "blue": ["dark blue"], "green": ["light green"], "yellow": ["gold"],
    "purple": ["violet"], "orange": ["light orange"], "black": ["dark"], "white": ["white color"],
    "gray": ["grey"],
}


def human_answers(rng: np.random.Generator, answer: str, pool: Sequence[str], n: int = 10) -> list[str]:
    """``n`` crowd answers: mostly the exact answer, a few variants ('grey', 'two') and slips.

    The exact answer is always given by at least 6 people, so its soft score is 1.0; a variant
    said by k people scores min(1, k/3) averaged over leave-one-out subsets.
    """
    out = [answer] * n
    n_noise = int(rng.binomial(4, 0.35))
    slots = rng.permutation(n)[:n_noise].tolist()
    for s in slots:
        if answer.isdigit() and rng.random() < 0.5:
            k = int(answer)
            out[s] = NUM_WORDS[k] if k < len(NUM_WORDS) else answer
        elif answer in _VARIANTS and rng.random() < 0.6:
            out[s] = _VARIANTS[answer][0]
        else:
            others = [p for p in pool if p != answer]
            out[s] = _pick(rng, others) if others else answer
    return out


def zh_question(qa: QA, scene: Scene) -> Optional[tuple[str, list[str], str]]:
    """Chinese (question, options, answer) for the families MMBench-CN uses; None if untranslated."""
    if qa.options is None:
        return None
    f = qa.family
    if f == "color":
        o = next(x for x in scene.objects if x.cell == tuple(qa.meta["object"]))
        subject = ZH_POSITIONS[o.position] + "的" + ZH_SHAPES[o.shape]
        return f"图中{subject}是什么颜色？", [ZH_COLORS[c] for c in qa.options], ZH_COLORS[qa.answer]
    if f == "text_color":
        return "图中文字是什么颜色？", [ZH_COLORS[c] for c in qa.options], ZH_COLORS[qa.answer]
    if f == "shape_at":
        o = next(x for x in scene.objects if x.cell == tuple(qa.meta["object"]))
        return f"图中{ZH_POSITIONS[o.position]}是什么形状？", [ZH_SHAPES[s] for s in qa.options], ZH_SHAPES[qa.answer]
    if f == "position":
        o = next(x for x in scene.objects if x.cell == tuple(qa.meta["object"]))
        if scene.count(o.shape, o.color) != 1:
            return None
        return (f"图中{ZH_COLORS[o.color]}的{ZH_SHAPES[o.shape]}在哪里？", [ZH_POSITIONS[p] for p in qa.options],
                ZH_POSITIONS[qa.answer])
    if f == "background":
        return "图片的背景是什么颜色？", [ZH_COLORS[c] for c in qa.options], ZH_COLORS[qa.answer]
    if f == "word":
        return "图中写的是哪个单词？", list(qa.options), qa.answer.upper()
    if f in ("count", "count_all"):
        shape = qa.meta.get("shape")
        what = ZH_SHAPES[shape] if shape else "图形"
        return f"图中有几个{what}？", list(qa.options), qa.answer
    if f == "same_color":
        pa, pb = (ZH_POSITIONS[POSITION_NAMES[tuple(qa.meta[k])]] for k in ("a", "b"))
        return f"图中{pa}的图形和{pb}的图形颜色相同吗？", [ZH_YESNO[x] for x in qa.options], ZH_YESNO[qa.answer]
    if f == "most_corners":
        return "图中哪个图形的角最多？", [ZH_SHAPES[s] for s in qa.options], ZH_SHAPES[qa.answer]
    if f == "relative_position":
        a, b = (next(x for x in scene.objects if x.cell == tuple(qa.meta[k])) for k in ("a", "b"))
        if scene.count(a.shape, a.color) != 1 or scene.count(b.shape, b.color) != 1:
            return None
        name = {"left of": "左边", "right of": "右边", "above": "上方", "below": "下方"}
        return (f"图中{ZH_COLORS[a.color]}的{ZH_SHAPES[a.shape]}在{ZH_COLORS[b.color]}的{ZH_SHAPES[b.shape]}的什么位置？",
                [name[x] for x in qa.options], name[qa.answer])
    if f == "character":
        return "图中的角色叫什么名字？", list(qa.options), qa.option_answer
    if f == "scene_kind":
        return "这张图片是在什么地方拍摄的？", [ZH_PLACES[x] for x in qa.options], ZH_PLACES[qa.answer]
    if f == "arithmetic":
        return "图中算式的结果是多少？", list(qa.options), qa.answer
    return None


def arithmetic_qa(rng: np.random.Generator, ops: str = "+-*") -> tuple[str, QA]:
    """``(problem, QA)`` for an image that shows only the problem, e.g. ``'12+7='`` -> '19'."""
    problem, value = arithmetic(rng, ops)
    pool = sorted({str(max(0, value + d)) for d in (-10, -3, -2, -1, 1, 2, 3, 10)} - {str(value)})
    return problem, QA("What is the result of the expression in the image?", str(value), "arithmetic", "number",
                       options=_options(rng, str(value), pool, 4), meta={"problem": problem})
