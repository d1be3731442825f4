"""Training resumed from a checkpoint (HF ``resume_from_checkpoint``) ends where an uninterrupted
run does; activation checkpointing is numerically neutral."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aligngpt.training import STAGE1_FILE, train

from .test_training_fixtures import Snapshot, StopAt, losses as _losses, make_workspace, train_options as _opts


@pytest.fixture(scope="module")
def ws(tmp_path_factory, official_tiny) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("resume")
    return make_workspace(root, official_tiny / "checkpoint" / "tokenizer.model", n_images=16, n_text=8) | {"root": root}


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_resume_from_checkpoint_matches_uninterrupted_run(ws, stage):
    common = dict(learning_rate=5e-3, max_steps=6, save_steps=3)
    full = train(_opts(ws, stage, f"{stage}-full", **common))
    train(_opts(ws, stage, f"{stage}-cut", **common), callbacks=[StopAt(3)])
    cut_dir = ws["root"] / f"{stage}-cut"
    assert (cut_dir / "checkpoint-3").is_dir()
    if stage == "pretrain":  # the intermediate checkpoint keeps the alignment table (quirk 14 fixed)
        keys = torch.load(cut_dir / "checkpoint-3" / STAGE1_FILE, weights_only=True).keys()
        assert "align_indicators.indicator_embs" in keys
    resumed = train(_opts(ws, stage, f"{stage}-cut", resume_from_checkpoint=str(cut_dir / "checkpoint-3"), **common))
    assert resumed.global_step == full.global_step == 6
    # log_history carries the checkpoint's first 3 entries; steps 4-6 are newly computed.
    new = [h["loss"] for h in resumed.log_history if "loss" in h and h["step"] > 3]
    assert len(new) == 3 and new == pytest.approx(_losses(full)[3:], abs=1e-6)
    if stage == "pretrain":
        a = torch.load(full.output_dir / STAGE1_FILE, weights_only=True)
        b = torch.load(resumed.output_dir / STAGE1_FILE, weights_only=True)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_gradient_checkpointing_changes_nothing_numerically(ws):
    plain, ckpt = Snapshot(), Snapshot()
    a = train(_opts(ws, "pretrain", "gc-off", learning_rate=1e-2, max_steps=3), callbacks=[plain])
    b = train(_opts(ws, "pretrain", "gc-on", learning_rate=1e-2, max_steps=3, gradient_checkpointing=True), callbacks=[ckpt])
    assert _losses(b) == pytest.approx(_losses(a), abs=1e-6)
    for key in plain.after:
        torch.testing.assert_close(ckpt.after[key], plain.after[key], rtol=0, atol=1e-6)


