"""The documented toy recipe, command by command through ``aligngpt-train`` (README "Toy recipe")."""
from __future__ import annotations

import json

import torch

import aligngpt
from aligngpt.cli.train_cli import main


def test_toy_recipe_end_to_end(tmp_path, capsys):
    root = tmp_path / "toy"
    assert main(["toy-setup", str(root), "--pretrain-samples", "12", "--instruct-samples", "12"]) == 0
    paths = json.loads(capsys.readouterr().out)
    scored = root / "data" / "pretrain_with_similarity.json"
    assert main(["score-alignment", "--data", paths["pretrain_json"], "--image-folder", paths["pretrain_images"],
                 "--clip", paths["clip"], "--levels", "8", "--out", str(scored), "--batch-size", "5",
                 "--no-progress"]) == 0
    records = json.loads(scored.read_text())
    # 12 pairs in 8 quantile levels: level l holds ceil((l+1)*12/8) - ceil(l*12/8) = 2,1,2,1,2,1,2,1 pairs.
    assert [sum(r["similarity"] == l for r in records) for l in range(8)] == [2, 1, 2, 1, 2, 1, 2, 1]
    common = ["--model", paths["base"], "--vision-tower", paths["vision_tower"], "--use-cpu",
              "--dataloader-num-workers", "0", "--disable-tqdm", "--per-device-train-batch-size", "4",
              "--gradient-accumulation-steps", "1", "--max-steps", "2"]
    assert main(["pretrain", *common, "--data", str(scored), "--image-folder", paths["pretrain_images"],
                 "--output-dir", str(root / "runs" / "pretrain")]) == 0
    stage1 = root / "runs" / "pretrain" / "mm_projector_align.bin"
    assert main(["finetune", *common, "--data", paths["instruct_json"], "--image-folder", paths["instruct_images"],
                 "--pretrain-mm-mlp-align", str(stage1), "--output-dir", str(root / "runs" / "finetune")]) == 0
    model, processor = aligngpt.load_pretrained(root / "runs" / "finetune", dtype=torch.float32)
    assert model.config.n_indicators == 8 and model.config.image_aspect_ratio == "pad"
    assert model.config.num_image_tokens == 36  # 48 px / patch 8, squared


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    missing = tmp_path / "none.json"
    code = main(["pretrain", "--model", str(tmp_path), "--vision-tower", str(tmp_path), "--data", str(missing),
                 "--output-dir", str(tmp_path / "out"), "--use-cpu"])
    assert code == 2
    assert "aligngpt-train: error:" in capsys.readouterr().err
