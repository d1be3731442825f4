"""The slow LLaMA sentencepiece tokenizer, as the released models were trained and evaluated with.

Reproduces ``LlamaTokenizer(use_fast=False, legacy=True)`` of transformers 4.31: the text is
split on the special-token strings, each piece is encoded by sentencepiece separately (so a
piece following ``</s>`` gets its own dummy-prefix space), BOS is prepended. Written against
sentencepiece directly so results do not move with the transformers tokenizer refactors.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import sentencepiece as spm

from ..constants import IMAGE_TOKEN_INDEX
from ..errors import ConfigError


class LlamaSPTokenizer:
    def __init__(self, model_file: str | Path, *, bos_token: str = "<s>", eos_token: str = "</s>", unk_token: str = "<unk>", pad_token_id: int | None = None):
        model_file = Path(model_file)
        if not model_file.is_file():
            raise ConfigError(f"tokenizer model not found: {model_file}")
        self.model_file = model_file
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.bos_token, self.eos_token, self.unk_token = bos_token, eos_token, unk_token
        self.bos_token_id = self.sp.piece_to_id(bos_token)
        self.eos_token_id = self.sp.piece_to_id(eos_token)
        self.unk_token_id = self.sp.piece_to_id(unk_token)
        # Released LLaVA/AlignGPT training sets pad = unk (id 0).
        self.pad_token_id = self.unk_token_id if pad_token_id is None else pad_token_id
        specials = sorted({bos_token, eos_token, unk_token}, key=len, reverse=True)
        self._special_ids = {s: self.sp.piece_to_id(s) for s in specials}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "LlamaSPTokenizer":
        folder = Path(folder)
        cfg = {}
        if (folder / "tokenizer_config.json").is_file():
            cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))

        def content(value, default):
            if isinstance(value, dict):
                return value.get("content", default)
            return value or default

        return cls(
            folder / "tokenizer.model",
            bos_token=content(cfg.get("bos_token"), "<s>"),
            eos_token=content(cfg.get("eos_token"), "</s>"),
            unk_token=content(cfg.get("unk_token"), "<unk>"),
        )

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer.model").write_bytes(self.model_file.read_bytes())
        cfg = {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "unk_token": self.unk_token,
            "pad_token": None,
            "legacy": True,
            "tokenizer_class": "LlamaTokenizer",
            "clean_up_tokenization_spaces": False,
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = [self.bos_token_id] if add_bos else []
        for piece in self._split.split(text):
            if not piece:
                continue
            if piece in self._special_ids:
                ids.append(self._special_ids[piece])
            else:
                ids.extend(self.sp.encode(piece))
        return ids

    #: Every LLaMA sentencepiece prompt starts with BOS; the alignment slot goes after it.
    adds_bos = True
    chat_template = None

    def tokenize_with_images(self, prompt: str, image_token: str = "<image>") -> list[int]:
        """``tokenizer_image_token``: chunks between ``<image>`` joined by -200, one BOS at the front."""
        return tokenize_with_images(self.encode, prompt, image_token)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids if int(i) >= 0]
        if skip_special_tokens:
            special = {self.bos_token_id, self.eos_token_id, self.unk_token_id, self.pad_token_id}
            ids = [i for i in ids if i not in special]
        size = self.sp.get_piece_size()
        if all(i < size for i in ids):
            return self.sp.decode(ids)
        # A model whose embedding table is wider than this tokenizer (padded vocabularies, the
        # random 7B benchmark model): ids past the end render as <id:N>, so distinct ids stay distinct.
        parts, run = [], []
        for i in ids:
            if i < size:
                run.append(i)
                continue
            if run:
                parts.append(self.sp.decode(run))
                run = []
            parts.append(f"<id:{i}>")
        if run:
            parts.append(self.sp.decode(run))
        return "".join(parts)

    def batch_decode(self, rows, skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(r, skip_special_tokens) for r in rows]


def tokenize_with_images(encode, prompt: str, image_token: str = "<image>") -> list[int]:
    """Chunks between ``<image>`` encoded separately and joined by -200; BOS (if any) only at the front."""
    chunks = prompt.split(image_token)
    ids = encode(chunks[0])
    for chunk in chunks[1:]:
        ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(encode(chunk, add_bos=False) if chunk else [])
    return ids
