"""The toy recipe's ``--backbone qwen2-siglip`` option: what each stage is told, the SigLIP-shaped
tower transplant, and (slow) the whole recipe on a tiny budget."""
from __future__ import annotations

import json

import pytest
import torch

from dev.toy_recipe import pipeline
from dev.toy_recipe.backbones import export_siglip_tower
from dev.toy_recipe.pipeline import Recipe, Work

TINY_RECIPE = {
    "n_pretrain": 64, "n_instruct": 64, "n_described": 64, "vocab_size": 400,
    "clip": {"n_images": 64, "steps": 3, "batch_size": 16, "warmup_steps": 1},
    "lm": {"steps": 3, "batch_size": 8, "warmup_steps": 1},
    "stage1": {"batch_size": 16, "learning_rate": 2e-3, "epochs": 1},
    "stage2": {"batch_size": 16, "learning_rate": 1e-3, "epochs": 1},
}


def test_default_recipe_file_is_unchanged_and_backbone_is_recorded():
    assert "backbone" not in json.loads(Recipe().to_json())  # existing work folders still match
    assert json.loads(Recipe(backbone="qwen2-siglip").to_json())["backbone"] == "qwen2-siglip"


def test_qwen2_siglip_stage_commands(tmp_path, monkeypatch):
    work = Work(tmp_path)
    commands = pipeline.train_commands(work, Recipe(backbone="qwen2-siglip"))
    for stage in ("pretrain", "finetune"):
        argv = commands[stage]
        assert argv[argv.index("--vision-tower") + 1] == str(work.stage("clip") / "siglip_tower")
    assert commands["finetune"][commands["finetune"].index("--version") + 1] == "qwen2"
    assert "--version" not in pipeline.train_commands(work, Recipe())["finetune"]
    assert "--conv-mode" in pipeline.eval_command(tmp_path, tmp_path, 8, conv_auto=True)
    seen = {}
    monkeypatch.setattr(pipeline, "run_stage", lambda name, w, r, env, o: seen.setdefault("opts", (r, o)))
    opts = pipeline.build_parser().parse_args(["all", "--work", str(tmp_path), "--backbone", "qwen2-siglip",
                                               "--until", "data"])
    pipeline.run_all(opts)
    recipe, used = seen["opts"]
    assert recipe.backbone == "qwen2-siglip"
    assert used.install_dir == str(work.root / "model")  # never the bundled model folder
    assert used.results_dir is None  # only what the command line names


def test_siglip_tower_transplant_keeps_the_clip_layers(tmp_path):
    from transformers import CLIPConfig, CLIPModel, SiglipVisionModel

    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                           image_size=16, patch_size=8),
        text_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                         vocab_size=50), projection_dim=8))
    clip.save_pretrained(str(tmp_path / "clip"))
    (tmp_path / "clip" / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": 16}}))
    siglip = SiglipVisionModel.from_pretrained(str(export_siglip_tower(tmp_path / "clip", tmp_path / "tower")))
    src, dst = clip.vision_model, siglip.vision_model if hasattr(siglip, "vision_model") else siglip
    assert siglip.config.hidden_act == clip.config.vision_config.hidden_act
    for key, value in src.encoder.state_dict().items():
        assert torch.equal(dst.encoder.state_dict()[key], value)
    assert torch.equal(dst.embeddings.position_embedding.weight, src.embeddings.position_embedding.weight[1:])
    assert torch.equal(dst.embeddings.patch_embedding.weight, src.embeddings.patch_embedding.weight)


@pytest.mark.slow
def test_qwen2_siglip_recipe_runs_end_to_end(tmp_path, capsys):
    """Every stage through install on a tiny budget, then the evaluation CLI on two tasks."""
    from aligngpt.cli.eval_cli import main

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(TINY_RECIPE))
    assert pipeline.main(["all", "--work", str(tmp_path / "w"), "--recipe", str(recipe), "--backbone", "qwen2-siglip",
                          "--threads", "1", "--until", "install"]) == 0
    model = tmp_path / "w" / "model"
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["text_config"]["model_type"] == "qwen2" and cfg["vision_config"]["model_type"] == "siglip_vision_model"
    assert cfg["alignment_anchor"] == "start" and cfg["conv_template"] == "qwen2"
    assert main(["run", "--tasks", "pope", "--model", str(model), "--limit", "4", "--conv-mode", "auto",
                 "--max-new-tokens", "4", "--output-dir", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    (run,) = [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    first = json.loads((run / "pope" / "samples.jsonl").read_text().splitlines()[0])
    assert first["prompt"].startswith("<|im_start|>system\n")


def test_backbone_results_page_is_not_the_bundled_models():
    """The committed qwen2-siglip page re-renders from its metrics; it claims no CI bar or bundled model,
    and the bundled page's rendering is untouched."""
    from pathlib import Path

    from dev.toy_recipe.results import render_readme

    root = Path(__file__).resolve().parents[1] / "results" / "toy"
    for folder in (root, root / "qwen2-siglip"):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert render_readme(metrics) == (folder / "README.md").read_text()
    page = (root / "qwen2-siglip" / "README.md").read_text()
    assert "--conv-mode auto" in page and "Regression tolerance" not in page and "--model toy" not in page
