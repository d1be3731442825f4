"""Prompts of the newer LM families: the llama3 / qwen2 / mistral / phi3 / gemma templates, their
label masks on hand-constructed conversations, the tokenizer's own chat template, ``--conv-mode
auto``, the tokenizer protocol's BOS rule and the alignment-slot anchor it implies."""
from __future__ import annotations

import pytest
import torch

from aligngpt.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.errors import ConfigError
from aligngpt.modeling.configuration import AlignGPTConfig
from aligngpt.modeling.multimodal_inputs import gate_text_statistics, plan_layout, scatter_sequence
from aligngpt.processing import HFTokenizer, LlamaSPTokenizer, load_tokenizer
from aligngpt.processing.conversation import CHAT_TEMPLATE, auto_template, build_prompt
from aligngpt.processing.training_preprocess import preprocess_sample

from .tiny_backbones import FAMILIES, build_tokenizer

CONVERSATION = [
    {"from": "human", "value": "What is it?\n<image>"}, {"from": "gpt", "value": "A cat."},
    {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "Red."},
]

#: family -> (the rendered conversation, the trained runs), written out by hand from each family's
#: published chat format. The BOS string is not rendered: the tokenizer adds the BOS id.
EXPECTED = {
    "llama3": (
        "<|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is it?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA cat.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nColour?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nRed.<|eot_id|>",
        ["A cat.<|eot_id|>", "Red.<|eot_id|>"],
    ),
    "qwen2": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n"
        "<|im_start|>user\nColour?<|im_end|>\n<|im_start|>assistant\nRed.<|im_end|>\n",
        ["A cat.<|im_end|>", "Red.<|im_end|>"],
    ),
    "mistral": (
        "[INST] <image>\nWhat is it? [/INST]A cat.</s>[INST] Colour? [/INST]Red.</s>",
        ["A cat.</s>", "Red.</s>"],
    ),
    "phi3": (
        "<|user|>\n<image>\nWhat is it?<|end|>\n<|assistant|>\nA cat.<|end|>\n"
        "<|user|>\nColour?<|end|>\n<|assistant|>\nRed.<|end|>\n",
        ["A cat.<|end|>", "Red.<|end|>"],
    ),
    "gemma2": (
        "<start_of_turn>user\n<image>\nWhat is it?<end_of_turn>\n<start_of_turn>model\nA cat.<end_of_turn>\n"
        "<start_of_turn>user\nColour?<end_of_turn>\n<start_of_turn>model\nRed.<end_of_turn>\n",
        ["A cat.<end_of_turn>", "Red.<end_of_turn>"],
    ),
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    out = {}
    for family in FAMILIES:
        build_tokenizer(family, root / family)
        out[family] = load_tokenizer(root / family)
    return out


def _runs(ids, labels, tokenizer):
    """The labelled tokens as decoded runs of consecutive positions."""
    runs, current = [], []
    for tok, lab in zip(ids, labels):
        if lab == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert lab == tok
            current.append(tok)
    if current:
        runs.append(current)
    return [tokenizer.decode(r, skip_special_tokens=False) for r in runs]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_template_render_and_label_mask_by_hand(tokenizers, family):
    tokenizer = tokenizers[family]
    template = FAMILIES[family]["template"]
    example = preprocess_sample(CONVERSATION, tokenizer, template, has_image=True)
    text, trained = EXPECTED[family]
    assert example.input_ids == tokenizer.tokenize_with_images(text)  # one pass over the whole render
    assert _runs(example.input_ids, example.labels, tokenizer) == trained
    assert example.input_ids.count(IMAGE_TOKEN_INDEX) == 1
    if tokenizer.adds_bos:
        assert example.input_ids[0] == tokenizer.bos_token_id and example.labels[0] == IGNORE_INDEX
    # the single-turn evaluation prompt is the render's opening, assistant turn left open
    prompt = build_prompt("What is it?", True, template)
    assert text.startswith(prompt.split("What is it?")[0])
    assert prompt.endswith(("[/INST]", "\n"))


def test_chat_template_path_matches_the_named_template(tokenizers):
    """The qwen2 tokenizer ships ChatML as its chat template: apply_chat_template gives the same
    ids and the same labels as the hand-written qwen2 template."""
    tokenizer = tokenizers["qwen2"]
    assert tokenizer.chat_template
    via_tokenizer = preprocess_sample(CONVERSATION, tokenizer, CHAT_TEMPLATE, has_image=True)
    named = preprocess_sample(CONVERSATION, tokenizer, "qwen2", has_image=True)
    assert via_tokenizer.input_ids == named.input_ids and via_tokenizer.labels == named.labels


def test_sentencepiece_tokenizer_with_a_turns_template(official_tiny):
    """Fallback without offsets: pieces encoded one by one, answers + marker trained."""
    tokenizer = LlamaSPTokenizer.from_pretrained(official_tiny / "checkpoint")
    example = preprocess_sample(CONVERSATION[:2], tokenizer, "mistral", has_image=True)
    trained = [t for t, lab in zip(example.input_ids, example.labels) if lab != IGNORE_INDEX]
    assert trained == tokenizer.encode("A cat.", add_bos=False) + [tokenizer.eos_token_id]
    assert example.input_ids[0] == tokenizer.bos_token_id


def test_bos_rule(tokenizers):
    """BOS is prepended iff the tokenizer adds one itself, and never twice."""
    for family, tokenizer in tokenizers.items():
        expects_bos = FAMILIES[family].get("bos") is not None and FAMILIES[family].get("add_bos", True)
        assert isinstance(tokenizer, HFTokenizer) and tokenizer.adds_bos == expects_bos
        ids = tokenizer.encode("the cat")
        assert (ids[0] == tokenizer.bos_token_id) == expects_bos
        if expects_bos:  # a chat template that renders the BOS string does not get a second one
            assert tokenizer.encode(tokenizer.bos_token + "the cat") == ids


def test_auto_template(tokenizers, official_tiny):
    sp = LlamaSPTokenizer.from_pretrained(official_tiny / "checkpoint")
    assert auto_template(AlignGPTConfig(), sp) == "vicuna_v1"  # released checkpoints
    assert auto_template(AlignGPTConfig(conv_template="phi3"), sp) == "phi3"  # recorded at training
    qwen = AlignGPTConfig(text_config={"model_type": "qwen2", "vocab_size": 400})
    assert auto_template(qwen, tokenizers["qwen2"]) == CHAT_TEMPLATE  # the tokenizer ships one
    for family in ("mistral", "phi3", "gemma2"):
        cfg = AlignGPTConfig(text_config={"model_type": family, "vocab_size": 400, "pad_token_id": 0})
        assert auto_template(cfg, tokenizers[family]) == FAMILIES[family]["template"]
    assert auto_template(AlignGPTConfig(vocab_size=400), tokenizers["llama3"]) == "llama3"  # <|eot_id|> in vocab
    with pytest.raises(ConfigError):
        auto_template(AlignGPTConfig(text_config={"model_type": "gpt2"}), sp)


@pytest.mark.parametrize("anchor,slot", [("after_bos", 1), ("start", 0)])
def test_alignment_anchor_places_the_slot(anchor, slot):
    """after_bos: the slot follows each row's first token; start: it precedes it (no BOS).
    Left padding never moves it relative to the row; the gate averages every text token but the
    BOS under after_bos, and every text token under start."""
    ids = torch.tensor([[0, 0, 11, IMAGE_TOKEN_INDEX, 12], [21, 22, IMAGE_TOKEN_INDEX, 23, 24]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    layout = plan_layout(ids, mask, num_image_tokens=3, with_slot=True, max_length=None, padding_side="left",
                         anchor=anchor)
    embeds = torch.arange(1, 11, dtype=torch.float32).reshape(2, 5, 1).repeat(1, 1, 2)
    features = torch.full((2, 3, 2), -1.0)
    vectors = torch.full((2, 2), 100.0)
    mb = scatter_sequence(layout, embeds, features, vectors, None)
    pad = layout.pad.tolist()
    assert mb.indicator_index.tolist() == [pad[0] + slot, pad[1] + slot]
    first_text = [embeds[0, 2, 0].item(), embeds[1, 0, 0].item()]
    for row in range(2):
        seq = mb.inputs_embeds[row, pad[row]:, 0].tolist()
        assert seq[slot] == 100.0
        assert seq[1 - slot] == first_text[row]  # the first prompt token sits on the other side
    total, count = gate_text_statistics(layout, embeds, None, prompt_only=False)
    assert count.tolist() == ([1, 3] if anchor == "after_bos" else [2, 4])


def test_unknown_anchor_is_refused():
    with pytest.raises(ValueError):
        AlignGPTConfig(text_config={"model_type": "qwen2"}, alignment_anchor="middle")


def test_eval_run_conv_mode_auto_uses_the_checkpoints_template(tmp_path, capsys):
    """``aligngpt-eval run --conv-mode auto`` on a Qwen2 + SigLIP checkpoint prompts in ChatML
    (recorded at training), and the run name changes with the flag (it changes answers)."""
    import json

    import aligngpt
    from aligngpt.cli.eval_cli import main
    from aligngpt.training.builder import ModelSpec, build_model

    from .tiny_backbones import build_lm, build_tower

    torch.manual_seed(0)
    model, processor = build_model(ModelSpec(base=build_lm("qwen2", tmp_path / "lm"),
                                             vision_tower=build_tower("siglip", tmp_path / "tower"),
                                             stage="finetune", conv_template="qwen2", random_align_table=True))
    aligngpt.save_pretrained(model, processor, tmp_path / "ckpt")
    for mode in ("auto", None):
        argv = ["run", "--tasks", "pope", "--model", str(tmp_path / "ckpt"), "--limit", "2", "--max-new-tokens", "3",
                "--output-dir", str(tmp_path / "runs"), "--canary", "never"]
        assert main(argv + (["--conv-mode", mode] if mode else [])) == 0
    capsys.readouterr()
    runs = sorted((tmp_path / "runs").iterdir())
    prompts = {}
    for run in (d for d in runs if d.is_dir()):
        rows = [json.loads(line) for line in (run / "pope" / "samples.jsonl").read_text().splitlines()]
        prompts[run.name] = rows[0]["prompt"]
    assert len(prompts) == 2  # two run names
    starts = sorted(p[:13] for p in prompts.values())
    assert starts == ["<|im_start|>s", "A chat betwee"]
