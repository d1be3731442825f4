"""Builders for the training tests: a tiny Llama base folder, a tiny CLIP tower, images and data.

Everything is written in the real on-disk formats: the base LLM as ``save_pretrained`` writes a
Llama checkpoint (config.json + safetensors) with a LLaMA sentencepiece ``tokenizer.model``
(copied from the official-tiny fixture), the tower as a ``CLIPVisionModel`` folder with its
``preprocessor_config.json``, the data as LLaVA's 558K / mix665k JSON arrays.
The few tests at the bottom check the builders themselves.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from transformers import TrainerCallback

from aligngpt.training import TrainOptions
from aligngpt.training.trainer import unwrap_model

from aligngpt.training.toy import write_base_llm, write_vision_tower

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
SHAPES = ("square", "circle")


def make_base_llm(folder: Path, tokenizer_model: Path) -> Path:
    """Hidden 32, 2 layers, vocab 600 (the tokenizer's pieces)."""
    return write_base_llm(folder, tokenizer_model, hidden=32, layers=2)


def make_tower(folder: Path) -> Path:
    """16 px images, patch 4 -> 16 patch tokens; hidden 16."""
    return write_vision_tower(folder, image_size=16, patch=4, hidden=16)


def draw(color: str, shape: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (250, 250, 250))
    w, h = size
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    from PIL import ImageDraw

    d = ImageDraw.Draw(image)
    (d.rectangle if shape == "square" else d.ellipse)(box, fill=COLORS[color])
    return image


def make_images(folder: Path, count: int) -> list[str]:
    """``count`` images named ``sub/img{i}.png``; sizes vary so pad-to-square matters."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    names = []
    sizes = [(20, 12), (16, 16), (12, 24), (30, 18)]
    colors = list(COLORS)
    for i in range(count):
        color, shape = colors[i % len(colors)], SHAPES[(i // len(colors)) % 2]
        name = f"sub/img{i}.png"
        draw(color, shape, sizes[i % len(sizes)]).save(folder / name)
        names.append(name)
    return names


def caption(i: int) -> str:
    colors = list(COLORS)
    return f"a {colors[i % len(colors)]} {SHAPES[(i // len(colors)) % 2]}"


def make_pretrain_json(path: Path, images: list[str], levels: int = 8) -> Path:
    """LLaVA 558K records with the integer ``similarity`` level."""
    records = []
    for i, name in enumerate(images):
        records.append({
            "id": f"{i:06d}",
            "image": name,
            "conversations": [
                {"from": "human", "value": "Render a clear and concise summary of the photo.\n<image>"},
                {"from": "gpt", "value": caption(i)},
            ],
            "similarity": i % levels,
        })
    path.write_text(json.dumps(records, indent=1))
    return path


def make_finetune_json(path: Path, images: list[str], n_text: int) -> Path:
    """mix665k-style conversations: single- and multi-turn image samples plus text-only ones."""
    records = []
    for i, name in enumerate(images):
        color, shape = caption(i).split()[1:]
        conv = [
            {"from": "human", "value": "<image>\nWhat color is the shape?"},
            {"from": "gpt", "value": f"It is {color}."},
        ]
        if i % 2:
            conv += [{"from": "human", "value": "What shape is it?"}, {"from": "gpt", "value": f"A {shape}."}]
        records.append({"id": f"img-{i}", "image": name, "conversations": conv})
    for j in range(n_text):
        records.append({
            "id": f"text-{j}",
            "conversations": [
                {"from": "human", "value": f"Count to {j % 4 + 2}."},
                {"from": "gpt", "value": " ".join(str(k) for k in range(1, j % 4 + 3))},
            ],
        })
    path.write_text(json.dumps(records, indent=1))
    return path


def make_workspace(root: Path, tokenizer_model: Path, *, n_images: int = 16, n_text: int = 8) -> dict[str, Path]:
    base = make_base_llm(root / "vicuna-tiny", tokenizer_model)
    tower = make_tower(root / "clip-tiny")
    images = make_images(root / "images", n_images)
    return {
        "base": base,
        "tower": tower,
        "images": root / "images",
        "pretrain": make_pretrain_json(root / "pretrain.json", images),
        "finetune": make_finetune_json(root / "finetune.json", images, n_text),
    }


# ---------------------------------------------------------------------------- training helpers
class Snapshot(TrainerCallback):
    """Copies of every model tensor when training begins and ends."""

    def __init__(self):
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}

    @staticmethod
    def _state(model):
        return {k: v.detach().clone().float() for k, v in unwrap_model(model).state_dict().items()}

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.before = self._state(model)

    def on_train_end(self, args, state, control, model=None, **kw):
        self.after = self._state(model)

    def changed(self) -> set[str]:
        assert self.before.keys() == self.after.keys()
        return {k for k in self.before if not torch.equal(self.before[k], self.after[k])}


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_training_stop = True


def train_options(ws, stage: str, out: str, **kw) -> TrainOptions:
    values = dict(
        stage=stage, model=str(ws["base"]), vision_tower=str(ws["tower"]), data=str(ws[stage]),
        image_folder=str(ws["images"]), output_dir=str(ws["root"] / out), per_device_train_batch_size=4,
        gradient_accumulation_steps=1, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        save_steps=1000, attn_implementation="eager", seed=11,
    )
    values.update(kw)
    return TrainOptions(**values)


def losses(result) -> list[float]:
    return [h["loss"] for h in result.log_history if "loss" in h]



# ---------------------------------------------------------------------------- builder checks
def test_base_and_tower_load_into_the_model(tmp_path, official_tiny):
    from aligngpt.modeling.loading import read_weights, weight_files
    from aligngpt.training.builder import ModelSpec, build_model

    ws = make_workspace(tmp_path, official_tiny / "checkpoint" / "tokenizer.model", n_images=2, n_text=1)
    model, processor = build_model(ModelSpec(base=ws["base"], vision_tower=ws["tower"]))
    base = {}
    for f in weight_files(ws["base"]):
        base.update(read_weights(f))
    own = model.state_dict()
    for key, value in base.items():  # every LLM tensor arrives unchanged
        torch.testing.assert_close(own[key], value, rtol=0, atol=0)
    assert model.config.num_image_tokens == 16  # (16 px / patch 4)^2
    assert model.config.n_indicators == 8 and model.config.mm_hidden_size == 16
    assert processor.image_settings.crop_height == 16
    for key in own:  # the fresh modules are initialised (no garbage from empty tensors)
        assert torch.isfinite(own[key]).all(), key
