"""AlignGPT training: alignment-level scoring (``score-alignment``), stage-1 pretraining and
stage-2 instruction tuning on the HF Trainer. Command line: ``aligngpt-train``; see README.md.
"""
from .bucketing import Bucketing, bucketize
from .builder import STAGE1_FILE, ModelSpec, build_model, read_stage1_file, save_stage1
from .data import TrainingCollator, TrainingDataset
from .params import TrainableChoice, set_trainable, trainable_prefixes
from .run import STAGE_DEFAULTS, TrainOptions, TrainResult, train
from .sampler import ModalityLengthGroupedSampler
from .scoring import ScoreOptions, score_alignment

__all__ = [
    "Bucketing", "bucketize", "STAGE1_FILE", "ModelSpec", "build_model", "read_stage1_file", "save_stage1",
    "TrainingCollator", "TrainingDataset", "TrainableChoice", "set_trainable", "trainable_prefixes",
    "STAGE_DEFAULTS", "TrainOptions", "TrainResult", "train", "ModalityLengthGroupedSampler",
    "ScoreOptions", "score_alignment",
]
