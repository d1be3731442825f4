"""A tiny CLIP for the toy world: trained contrastively on toy image-caption pairs.

It plays both CLIP roles of the AlignGPT recipe: ``aligngpt-train score-alignment --clip`` scores
the pretraining pairs with it, and ``--vision-tower`` takes its vision half (frozen in both
stages, penultimate-layer patch features, as CLIP ViT-L/14-336 in the 7B recipe).

Training pairs are drawn from the toy world's own stream (``rng_for(seed, "clip")``), disjoint
from the benchmark streams: scenes with full captions (the caption and detailed-description
writers of :mod:`aligngpt.toy.text`), some blurred scenes, some wide scenes padded to square as
the evaluation pads them, and text cards (words, sums, three-line code) like the MME cognition
images. Images come in *twins* that differ in exactly one fact (mostly a shape, else a size,
colour, place, extra object, background, word or text colour), each with its own caption, and a
batch holds whole twins: plain contrastive batches are solved by colour and position alone
(a linear probe of such a tower cannot tell a circle from a star), twins force the encoder to
see every attribute a question can ask about. Captions are always full and true, so partial
captions later get an intermediate similarity, which is what AlignGPT's alignment levels bucket.

Saved as a ``CLIPModel`` folder: ``config.json``, ``model.safetensors``,
``preprocessor_config.json`` and the ``CLIPTokenizer`` files of :mod:`.tokenizers`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image

from aligngpt.processing.image import ImageProcessorSettings, preprocess_images
from aligngpt.toy import text as T
from aligngpt.toy.world import (
    BACKGROUNDS, CELLS, COLORS, SHAPES, WORDS, Scene, ToyObject, ToyText, encode_image, render_scene,
    render_text_card, rng_for, sample_scene,
)

from .loop import optimizer_step, seeded_batches, warmup_cosine
from .tokenizers import build_clip_tokenizer

log = logging.getLogger(__name__)


@dataclass
class ClipRecipe:
    """Sizes and optimisation of the tiny CLIP (defaults: the bundled model's)."""

    image_size: int = 48
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    projection_dim: int = 128
    max_text_length: int = 77
    single_object_share: float = 0.4
    region_weight: float = 4.0
    region_head: bool = False
    """A learned linear head on the pooled patch features (else the features themselves, which
    needs vision_hidden == projection_dim, are compared with the phrase embeddings)."""
    n_images: int = 8000
    steps: int = 400
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    seed: int = 0


# ---------------------------------------------------------------------------- pairs
@dataclass
class Pair:
    image: Image.Image
    caption: Callable[[np.random.Generator], str]
    """Caption writer (a fresh wording each time it is called)."""
    regions: tuple[tuple[tuple[str, ...], int, int, int], ...] = ()
    """(phrases, grid row, first column, end column) of each object and text line, in the 3x3 cell
    grid of the toy layout; empty where the grid does not map onto the pixels (wide, blurred).
    ``phrases`` are true descriptions of the region, the full one first."""


def _jpeg(img: Image.Image) -> Image.Image:
    """Round-trip through JPEG, as every toy training and most benchmark images are stored."""
    with Image.open(io.BytesIO(encode_image(img, "JPEG"))) as im:
        return im.convert("RGB")


def _replace_obj(scene: Scene, i: int, **changes) -> Scene:
    objs = list(scene.objects)
    objs[i] = dataclasses.replace(objs[i], **changes)
    return dataclasses.replace(scene, objects=tuple(objs))


#: How often each kind of one-fact change makes a twin (shape is the hardest fact to learn at 48 px).
TWIN_KINDS = {"shape": 0.45, "size": 0.12, "color": 0.1, "move": 0.1, "add": 0.08, "background": 0.05,
              "word": 0.06, "text_color": 0.04}


def perturb_one(scene: Scene, rng: np.random.Generator) -> Scene:
    """The scene with exactly one fact changed (a colour, shape, size, place, background, word...)."""
    kinds = [k for k in TWIN_KINDS if scene.text is not None or k not in ("word", "text_color")]
    p = np.asarray([TWIN_KINDS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    i = int(rng.integers(len(scene.objects)))
    o = scene.objects[i]
    if kind == "color":
        return _replace_obj(scene, i, color=_pick(rng, [c for c in COLORS if c != o.color]))
    if kind == "shape":
        return _replace_obj(scene, i, shape=_pick(rng, [s for s in SHAPES if s != o.shape]))
    if kind == "size":
        return _replace_obj(scene, i, size="small" if o.size == "large" else "large")
    free = [c for c in CELLS if c not in {x.cell for x in scene.objects}
            and (scene.text is None or c[0] != scene.text.row)]
    if kind == "move" and free:
        r, c = free[int(rng.integers(len(free)))]
        return _replace_obj(scene, i, row=r, col=c)
    if kind == "add" and free:
        r, c = free[int(rng.integers(len(free)))]
        new = ToyObject(_pick(rng, list(SHAPES)), _pick(rng, list(COLORS)), _pick(rng, ["small", "large"]), r, c)
        return dataclasses.replace(scene, objects=scene.objects + (new,))
    if kind == "word":
        t = scene.text
        return dataclasses.replace(scene, text=ToyText(_pick(rng, [w for w in WORDS if w != t.text]), t.color, t.row))
    if kind == "text_color":
        t = scene.text
        return dataclasses.replace(scene, text=ToyText(t.text, _pick(rng, [c for c in COLORS if c != t.color]), t.row))
    if kind in ("move", "add"):  # no free cell: change the shape instead
        return _replace_obj(scene, i, shape=_pick(rng, [s for s in SHAPES if s != o.shape]))
    return dataclasses.replace(scene, background=_pick(rng, [b for b in BACKGROUNDS if b != scene.background]))


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def object_phrases(o: ToyObject) -> tuple[str, ...]:
    """The full phrase, then the shape alone ("a star" must beat every other shape of the batch:
    a direct push on shape features, the hardest attribute to learn at this resolution)."""
    return (f"a {o.size} {o.color} {o.shape}", f"a {o.shape}")


def scene_regions(scene: Scene) -> tuple[tuple[tuple[str, ...], int, int, int], ...]:
    regions = [(object_phrases(o), o.row, o.col, o.col + 1) for o in scene.objects]
    if scene.text is not None:
        t = scene.text
        regions.append(((f'the word "{t.text}" in {t.color}', f'the word "{t.text}"'), t.row, 0, 3))
    return tuple(regions)



def _scene_pair(scene: Scene, size, prefix: str = "", grid: bool = True) -> Pair:
    image = _jpeg(render_scene(scene, size))

    def caption(rng: np.random.Generator) -> str:
        if rng.random() < 0.3:
            return prefix + T.detailed_description(scene)
        return prefix + T.caption_full(scene, rng)

    return Pair(image, caption, scene_regions(scene) if grid else ())


def _card_pair(lines: list[str], what: str, size: int) -> Pair:
    text = f'A white card with the {what} "{" ".join(lines)}" written in black.'
    first = (3 - len(lines)) // 2  # render_text_card centres the lines on the 3-row grid
    regions = tuple(((f'the text "{line}"',), first + i, 0, 3) for i, line in enumerate(lines))
    return Pair(_jpeg(render_text_card("", lines=lines, size=size)), lambda rng: text, regions)


def _code_lines(a: int, op: str, b: int) -> list[str]:
    return [f"A={a}", f"B=A{op}{b}", "PRINT B"]


def make_twins(n: int, seed: int = 0, size: int = 48, single: float = 0.4) -> list[tuple[Pair, Pair]]:
    """``n`` twin pairs from the ``clip`` stream of the toy world (deterministic).

    The two images of a twin differ in exactly one fact and each has its own caption, so inside a
    batch each image's twin caption is the hardest negative there is. ``single`` is the share of
    scenes with one object (the rest have 1-4): with fewer objects per image the pooled
    embedding has room for every attribute, and the patch features it trains carry over.
    """
    rng = rng_for(seed, "clip")
    twins = []
    for _ in range(n):
        r = rng.random()
        if r < 0.82:
            blur = 0.77 <= r
            wide = 0.70 <= r < 0.77  # padded to square as TextVQA / LLaVA-Bench images are
            shape = (size * 4 // 3, size) if wide else size
            n_objects = 1 if (blur or rng.random() < single) else None
            scene = sample_scene(rng, n_objects=n_objects, blur=blur, word_prob=0.4 if blur else 0.3)
            twin = perturb_one(scene, rng)
            prefix = "A blurred photo. " if blur else ""
            grid = not (wide or blur)
            twins.append((_scene_pair(scene, shape, prefix, grid), _scene_pair(twin, shape, prefix, grid)))
        elif r < 0.90:
            p1, _ = T.arithmetic(rng)
            p2, _ = T.arithmetic(rng)
            twins.append((_card_pair([p1], "sum", size), _card_pair([p2 if p2 != p1 else p1 + "1"], "sum", size)))
        elif r < 0.96:
            word = _pick(rng, list(WORDS))
            other = _pick(rng, [w for w in WORDS if w != word])
            twins.append((_card_pair([word], "word", size), _card_pair([other], "word", size)))
        else:
            a, b = int(rng.integers(1, 10)), int(rng.integers(2, 10))
            k = int(rng.integers(3))
            twins.append((_card_pair(_code_lines(a, "+-*"[k], b), "code", size),
                          _card_pair(_code_lines(a, "+-*"[(k + 1) % 3], b), "code", size)))
    return twins


# ---------------------------------------------------------------------------- model
def processor_settings(recipe: ClipRecipe) -> ImageProcessorSettings:
    s = recipe.image_size
    return ImageProcessorSettings(shortest_edge=s, crop_height=s, crop_width=s)


def preprocessor_config(recipe: ClipRecipe) -> dict:
    """``preprocessor_config.json`` of a CLIP folder (OpenAI CLIP's mean/std and bicubic resize)."""
    s = processor_settings(recipe)
    return {
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": s.shortest_edge},
        "crop_size": {"height": s.crop_height, "width": s.crop_width}, "image_mean": list(s.image_mean),
        "image_std": list(s.image_std), "rescale_factor": s.rescale_factor, "resample": s.resample,
        "do_resize": True, "do_center_crop": True, "do_normalize": True, "do_rescale": True, "do_convert_rgb": True,
    }


def build_clip(recipe: ClipRecipe, vocab_size: int, bos_id: int, eos_id: int):
    from transformers import CLIPConfig, CLIPModel

    text = dict(
        vocab_size=vocab_size, hidden_size=recipe.text_hidden, intermediate_size=4 * recipe.text_hidden,
        num_hidden_layers=recipe.text_layers, num_attention_heads=recipe.text_heads,
        max_position_embeddings=recipe.max_text_length, projection_dim=recipe.projection_dim,
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id, hidden_act="quick_gelu",
    )
    vision = dict(
        hidden_size=recipe.vision_hidden, intermediate_size=4 * recipe.vision_hidden,
        num_hidden_layers=recipe.vision_layers, num_attention_heads=recipe.vision_heads,
        image_size=recipe.image_size, patch_size=recipe.patch_size, projection_dim=recipe.projection_dim,
        hidden_act="quick_gelu",
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=recipe.projection_dim)
    torch.manual_seed(recipe.seed)
    return CLIPModel(config)


def _features(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _lr_at(step: int, recipe: ClipRecipe) -> float:
    """Warm-up, then cosine down to zero."""
    return warmup_cosine(step, peak=recipe.learning_rate, warmup=recipe.warmup_steps, total=recipe.steps)


def _pixels(pairs: list[Pair], settings: ImageProcessorSettings) -> torch.Tensor:
    # Wide images are padded to square, as the evaluation's image_aspect_ratio=pad does.
    return torch.cat([preprocess_images([p.image], settings, pad_to_square=p.image.width != p.image.height)
                      for p in pairs])


def _embed(model, tok, pixels: torch.Tensor, texts: list[str], max_length: int):
    """Normalised image and text embeddings, plus the vision tower's penultimate hidden states."""
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    vision = model.vision_model(pixel_values=pixels, output_hidden_states=True)
    img = model.visual_projection(vision.pooler_output)
    txt = _features(model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
    norm = torch.nn.functional.normalize
    return norm(img, dim=-1), norm(txt, dim=-1), vision.hidden_states[-2]


def region_pooling(pairs: list[Pair], patch_size: int, image_size: int) -> tuple[torch.Tensor, list[tuple[str, ...]]]:
    """A [regions, images * patches] averaging matrix over each region's patches, and the phrases.

    The toy layout is a 3x3 grid of cells; with patches that tile a cell (patch size dividing
    image_size / 3) a region is exactly a block of patches.
    """
    grid = image_size // patch_size
    per_cell = grid // 3
    if per_cell * 3 != grid:
        raise ValueError(f"patch size {patch_size} does not tile the 3x3 toy grid of a {image_size} px image")
    n_patches = grid * grid
    rows, cols, vals, phrases = [], [], [], []
    for i, pair in enumerate(pairs):
        for options, r, c0, c1 in pair.regions:
            cells = [(pr, pc) for pr in range(r * per_cell, (r + 1) * per_cell)
                     for pc in range(c0 * per_cell, c1 * per_cell)]
            for pr, pc in cells:
                rows.append(len(phrases))
                cols.append(i * n_patches + pr * grid + pc)
                vals.append(1.0 / len(cells))
            phrases.append(options)
    weights = torch.zeros(len(phrases), len(pairs) * n_patches)
    if phrases:
        weights[torch.tensor(rows), torch.tensor(cols)] = torch.tensor(vals)
    return weights, phrases


def train_clip(out_dir: Path, recipe: Optional[ClipRecipe] = None, extra_captions: tuple[str, ...] = ()) -> dict:
    """Build the tokenizer, train the CLIP, save the folder; returns a small training report.

    ``recipe.n_images`` images are made as ``n_images // 2`` twins; a batch holds
    ``batch_size // 2`` whole twins. Loss: the symmetric InfoNCE of CLIP with a learned
    temperature (image vs caption), plus a region term (weight ``region_weight``): each object or
    text line, as the mean of its cell's patch features at the layer AlignGPT reads (-2), against
    the text embeddings of the batch's distinct phrases ("a small red star", 'the word "CAT" in
    blue'). Region-phrase contrast (as in grounded CLIP variants) is what teaches the patch
    features shapes within a few hundred steps; image-caption contrast alone learns colours and
    places but, at this size and budget, not shapes. The region head is used only in training.
    """
    from transformers import CLIPTokenizer

    recipe = recipe or ClipRecipe()
    out_dir = Path(out_dir)
    started = time.time()
    twins = make_twins(recipe.n_images // 2, recipe.seed, recipe.image_size, recipe.single_object_share)
    pairs = [p for twin in twins for p in twin]  # twin k = pairs 2k, 2k+1
    cap_rng = np.random.default_rng(recipe.seed)
    corpus = [p.caption(cap_rng) for p in pairs for _ in range(2)] + list(extra_captions)
    corpus += sorted({phrase for p in pairs for options, *_ in p.regions for phrase in options})
    build_clip_tokenizer(corpus, out_dir, recipe.max_text_length)
    tok = CLIPTokenizer.from_pretrained(out_dir)
    model = build_clip(recipe, len(tok), tok.bos_token_id, tok.eos_token_id)
    if recipe.region_head:
        head = torch.nn.Linear(recipe.vision_hidden, recipe.projection_dim)
    elif recipe.vision_hidden == recipe.projection_dim:
        head = torch.nn.Identity()
    else:
        raise ValueError("region_head=False needs vision_hidden == projection_dim")
    pixels = _pixels(pairs, processor_settings(recipe))
    log.info("clip: %d images prepared in %.1fs", len(pairs), time.time() - started)

    params = list(model.named_parameters()) + [("region_head." + n, p) for n, p in head.named_parameters()]
    decay = [p for n, p in params if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in params if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.learning_rate)
    batches = seeded_batches(len(twins), max(1, recipe.batch_size // 2), torch.Generator().manual_seed(recipe.seed))
    rng = np.random.default_rng(recipe.seed + 1)
    model.train()
    losses, region_losses = [], []
    norm = torch.nn.functional.normalize
    for step, twin_ids in zip(range(recipe.steps), batches):
        idx = [2 * t + j for t in twin_ids for j in (0, 1)]
        batch = [pairs[i] for i in idx]
        img, txt, hidden = _embed(model, tok, pixels[idx], [p.caption(rng) for p in batch], recipe.max_text_length)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img @ txt.T
        target = torch.arange(len(idx))
        loss = 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                      + torch.nn.functional.cross_entropy(logits.T, target))
        pool, options = region_pooling(batch, recipe.patch_size, recipe.image_size)
        if options and recipe.region_weight > 0:
            region = norm(head(pool @ hidden[:, 1:].reshape(-1, hidden.shape[-1])), dim=-1)
            rloss = 0.0
            for level in (0, 1):  # full phrases, then shape-only: one granularity per softmax
                phrases = [o[min(level, len(o) - 1)] for o in options]
                distinct = sorted(set(phrases))
                enc = tok(distinct, padding=True, return_tensors="pt")
                ptxt = norm(_features(model.get_text_features(**enc)), dim=-1)
                rtarget = torch.tensor([distinct.index(p) for p in phrases])
                rloss = rloss + 0.5 * torch.nn.functional.cross_entropy(scale * region @ ptxt.T, rtarget)
            loss = loss + recipe.region_weight * rloss
            region_losses.append(float(rloss))
        optimizer_step(opt, loss, _lr_at(step, recipe), model.parameters())  # the region head is not clipped
        losses.append(loss.item())
        if step % 50 == 0 or step == recipe.steps - 1:
            log.info("clip step %d/%d loss %.4f (region %.4f)", step, recipe.steps, losses[-1],
                     region_losses[-1] if region_losses else float("nan"))
    model.eval()
    model.save_pretrained(out_dir)
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(recipe), indent=2) + "\n")
    report = {"recipe": dataclasses.asdict(recipe), "final_loss": float(np.mean(losses[-20:])),
              "final_region_loss": float(np.mean(region_losses[-20:])) if region_losses else None,
              "seconds": round(time.time() - started, 1)}
    (out_dir / "toy_clip_training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


@torch.no_grad()
def twin_accuracy(folder: Path, n: int = 400, seed: int = 12345) -> float:
    """Share of fresh twins told apart: each image's own caption beats its twin's (a quality probe)."""
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(folder).eval()
    tok = CLIPTokenizer.from_pretrained(folder)
    settings = ImageProcessorSettings.from_folder(folder)
    pairs = [p for twin in make_twins(n, seed, settings.crop_height) for p in twin]
    rng = np.random.default_rng(seed)
    img, txt, _ = _embed(model, tok, _pixels(pairs, settings), [p.caption(rng) for p in pairs], 77)
    sim = img @ txt.T
    own = sim.diagonal()
    other = torch.stack([sim[i, i ^ 1] for i in range(len(pairs))])
    return float((own > other).float().mean())
