#!/usr/bin/env python
"""Does a toy model use the image? Two measurements behind the bundled model's unmet acceptance bar.

    python dev/toy_image_use.py [--model DIR] [--questions 300]

1. Questions drawn from the toy world ("Is there a red object in the image?", "Is there a star
   in the image?", half of them true), answered by greedy generation with the question's own
   image and with another question's image. A model that reads the image is right more often
   with its own image; one that answers from the question alone scores the same with both.
2. The same yes/no truths read by a small MLP from the model's frozen vision features
   (projector output, any-cell max pooling), trained on other scenes: what the image tokens
   themselves make available to the language model.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import aligngpt
from aligngpt.data.base import Sample
from aligngpt.engine.batched import InferenceEngine
from aligngpt.harness.toy import toy_model_dir
from aligngpt.toy.layout import SHORT_ANSWER
from aligngpt.toy.world import COLORS, SHAPES, encode_image, render_scene, sample_scene


def draw_questions(rng: np.random.Generator, n: int):
    """(scene, question, truth) with half the asked attributes present, colours and shapes alike."""
    out = []
    while len(out) < n:
        scene = sample_scene(rng)
        kind = "color" if len(out) % 2 else "shape"
        values = list(COLORS) if kind == "color" else list(SHAPES)
        present = sorted({getattr(o, kind) for o in scene.objects})
        absent = [v for v in values if v not in present]
        truth = bool(rng.random() < 0.5 and present) or not absent
        value = (present if truth else absent)[int(rng.integers(len(present if truth else absent)))]
        noun = f"{value} object" if kind == "color" else value
        out.append((scene, f"Is there a {noun} in the image?{SHORT_ANSWER}", truth))
    return out


def generation_accuracy(model, processor, questions, image_shift: int) -> float:
    images = [encode_image(render_scene(s, 48), "PNG") for s, _, _ in questions]
    samples = [Sample(question_id=i, question=q, image=images[(i + image_shift) % len(images)])
               for i, (_, q, _) in enumerate(questions)]
    preds, _ = InferenceEngine(model, processor).generate(samples, template="vicuna_v1", max_new_tokens=3,
                                                         pad_to_square=True, batch_size=16)
    said_yes = {p.key: p.text.strip().lower().startswith("yes") for p in preds}
    return float(np.mean([said_yes[s.key] == truth for s, (_, _, truth) in zip(samples, questions)]))


def feature_readout_accuracy(model, processor, rng: np.random.Generator, n_train: int = 3000, n_test: int = 500) -> float:
    """Colour presence (one output per colour) from the projected image tokens, held-out scenes."""
    colors = list(COLORS)
    scenes = [sample_scene(rng) for _ in range(n_train + n_test)]
    with torch.no_grad():
        pixels = processor.preprocess_images([render_scene(s, 48) for s in scenes])
        feats = torch.cat([model.encode_images(pixels[i:i + 500]) for i in range(0, len(scenes), 500)])
    target = torch.zeros(len(scenes), len(colors))
    for k, s in enumerate(scenes):
        for o in s.objects:
            target[k, colors.index(o.color)] = 1.0
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(feats.shape[-1], 256), torch.nn.GELU(), torch.nn.Linear(256, len(colors)))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(500):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(feats[:n_train]).amax(1), target[:n_train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        guess = head(feats[n_train:]).amax(1) > 0
    return float((guess == target[n_train:].bool()).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(toy_model_dir()))
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model, processor = aligngpt.load_pretrained(args.model)
    rng = np.random.default_rng(args.seed)
    questions = draw_questions(rng, args.questions)
    own = generation_accuracy(model, processor, questions, 0)
    other = generation_accuracy(model, processor, questions, 7)
    readout = feature_readout_accuracy(model, processor, rng)
    print(f"model: {args.model}")
    print(f"yes/no presence questions ({len(questions)}, half true): own image {own:.1%}, another question's image {other:.1%}")
    print(f"colour presence read from the frozen image tokens by a small MLP (held-out scenes): {readout:.1%}")


if __name__ == "__main__":
    main()
