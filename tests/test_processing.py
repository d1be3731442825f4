"""Conversation templates, pad-to-square and tokenisation details of the released processing."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from aligngpt.errors import ConfigError
from aligngpt.processing import build_prompt, expand_to_square, get_template
from aligngpt.processing.image import ImageProcessorSettings, preprocess_images


def test_vicuna_and_llava_v1_prompts():
    assert build_prompt("Hi?", has_image=False, template="vicuna_v1") == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: Hi? ASSISTANT:"
    )
    assert build_prompt("Hi?", has_image=True, template="llava_v1").startswith("A chat between a curious human")
    assert build_prompt("Hi?", has_image=True, template="llava_v1").endswith("USER: <image>\nHi? ASSISTANT:")


def test_multi_turn_separators():
    tpl = get_template("vicuna_v1")
    text = tpl.render([("USER", "a"), ("ASSISTANT", "b"), ("USER", "c"), ("ASSISTANT", None)])
    assert text.endswith("USER: a ASSISTANT: b</s>USER: c ASSISTANT:")


def test_plain_and_llama_2_templates():
    assert build_prompt("caption", has_image=True, template="plain") == "<image>\ncaption"
    llama = get_template("llava_llama_2").render([("USER", "q1"), ("ASSISTANT", "a1"), ("USER", "q2"), ("ASSISTANT", None)])
    assert llama.startswith("[INST] <<SYS>>\nYou are a helpful language and vision assistant.")
    assert llama.endswith("q1 [/INST] a1 </s><s>[INST] q2 [/INST]")


def test_unknown_template():
    with pytest.raises(ConfigError):
        get_template("chatml")


def test_expand_to_square_pads_with_the_mean_colour():
    settings = ImageProcessorSettings()
    assert settings.pad_color == (122, 116, 104)
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    square = expand_to_square(wide, settings.pad_color)
    assert square.size == (40, 40)
    assert square.getpixel((0, 0)) == (122, 116, 104) and square.getpixel((0, 10)) == (255, 0, 0)
    tall = Image.new("RGB", (10, 30), (0, 255, 0))
    assert expand_to_square(tall, settings.pad_color).getpixel((10, 5)) == (0, 255, 0)  # x offset (30-10)//2


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_unusual_image_modes_preprocess(mode):
    settings = ImageProcessorSettings(shortest_edge=8, crop_height=8, crop_width=8)
    image = Image.new(mode if mode != "I;16" else "I;16", (12, 9))
    if mode == "I;16":
        from aligngpt.data.images import open_image
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        image = open_image(buf.getvalue())
    out = preprocess_images([image], settings, pad_to_square=True)
    assert out.shape == (1, 3, 8, 8) and torch.isfinite(out).all()
