"""The tokenizer protocol, and its ``AutoTokenizer``-backed implementation for non-LLaMA-1/2 families.

Every tokenizer the model code uses offers the same small surface (``TokenizerProtocol``): special
ids, ``adds_bos``, ``encode`` / ``tokenize_with_images`` / ``decode``, ``save_pretrained`` and an
optional ``chat_template``. Released AlignGPT / LLaVA-1.5 checkpoints keep the sentencepiece
``LlamaSPTokenizer`` (bit-exact with how they were trained); every other family (Llama-3, Qwen2,
Mistral, Phi-3, Gemma, ...) goes through ``HFTokenizer``, a thin wrapper over a transformers fast
tokenizer. ``load_tokenizer`` picks one from the folder.

BOS rule (shared by both): the text is encoded without the tokenizer's own special-token
post-processing, and a BOS id is prepended iff the tokenizer adds one itself (``adds_bos``:
probed by encoding a letter with special tokens) and the text does not already begin with the
BOS string (chat templates often render it). So ``adds_bos`` also decides the alignment slot's
anchor: after BOS when true, position 0 (Qwen2) when false.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, Sequence

from ..constants import IMAGE_TOKEN_INDEX
from ..errors import ConfigError
from .tokenizer import LlamaSPTokenizer, tokenize_with_images


class TokenizerProtocol(Protocol):
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int
    adds_bos: bool
    chat_template: str | None

    def encode(self, text: str, add_bos: bool = True) -> list[int]: ...
    def tokenize_with_images(self, prompt: str, image_token: str = "<image>") -> list[int]: ...
    def decode(self, ids, skip_special_tokens: bool = True) -> str: ...
    def batch_decode(self, rows, skip_special_tokens: bool = True) -> list[str]: ...
    def save_pretrained(self, folder: str | Path) -> None: ...
    def __len__(self) -> int: ...


class HFTokenizer:
    """A transformers fast tokenizer behind the protocol (offsets for exact label masking)."""

    def __init__(self, tokenizer):
        self.hf = tokenizer
        self.bos_token = tokenizer.bos_token
        self.eos_token = tokenizer.eos_token
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        bos_id = tokenizer.bos_token_id
        self.adds_bos = bos_id is not None and bool(probe) and probe[0] == bos_id
        self.bos_token_id = bos_id if self.adds_bos else None
        self.eos_token_id = tokenizer.eos_token_id
        self.unk_token_id = tokenizer.unk_token_id
        pad = tokenizer.pad_token_id
        for fallback in (self.eos_token_id, self.unk_token_id, 0):
            if pad is None:
                pad = fallback
        self.pad_token_id = int(pad)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "HFTokenizer":
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder}: cannot load the tokenizer ({str(exc).splitlines()[0][:200]})") from None

    @property
    def chat_template(self) -> str | None:
        template = getattr(self.hf, "chat_template", None)
        return template if isinstance(template, str) and template else None

    def __len__(self) -> int:
        return len(self.hf)

    def _bos_prefix(self, text: str, add_bos: bool) -> tuple[str, list[int], int]:
        """(text without a rendered BOS string, BOS ids to prepend, characters removed)."""
        if not (add_bos and self.adds_bos):
            return text, [], 0
        if self.bos_token and text.startswith(self.bos_token):
            return text[len(self.bos_token):], [self.bos_token_id], len(self.bos_token)
        return text, [self.bos_token_id], 0

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        body, head, _ = self._bos_prefix(text, add_bos)
        return head + list(self.hf(body, add_special_tokens=False)["input_ids"])

    def encode_with_offsets(self, text: str, add_bos: bool = True) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and each id's character span in ``text`` (``<image>`` becomes -200 with its span)."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        cursor = 0
        for n, chunk in enumerate(text.split("<image>")):
            if n:
                ids.append(IMAGE_TOKEN_INDEX)
                offsets.append((cursor, cursor + len("<image>")))
                cursor += len("<image>")
            body, head, skipped = self._bos_prefix(chunk, add_bos and n == 0)
            ids.extend(head)
            offsets.extend([(cursor, cursor + skipped)] * len(head))
            if body:
                enc = self.hf(body, add_special_tokens=False, return_offsets_mapping=True)
                ids.extend(enc["input_ids"])
                offsets.extend((cursor + skipped + a, cursor + skipped + b) for a, b in enc["offset_mapping"])
            cursor += len(chunk)
        return ids, offsets

    def tokenize_with_images(self, prompt: str, image_token: str = "<image>") -> list[int]:
        return tokenize_with_images(self.encode, prompt, image_token)

    def apply_chat_template(self, messages: Sequence[dict], add_generation_prompt: bool) -> str:
        """The tokenizer's own chat template, rendered to text (tokenised later, like any prompt)."""
        if self.chat_template is None:
            raise ConfigError("this tokenizer ships no chat_template; pick a conversation template by name")
        return self.hf.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)

    def special_strings(self) -> list[str]:
        return sorted({str(t) for t in self.hf.all_special_tokens} | {str(t) for t in self.hf.get_added_vocab()},
                      key=len, reverse=True)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids if int(i) >= 0]
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    def batch_decode(self, rows, skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(r, skip_special_tokens) for r in rows]

    def save_pretrained(self, folder: str | Path) -> None:
        self.hf.save_pretrained(str(folder))


def uses_sentencepiece(folder: str | Path) -> bool:
    """LLaMA-1/2 sentencepiece folders (released checkpoints, llava-hf) keep ``LlamaSPTokenizer``."""
    folder = Path(folder)
    if not (folder / "tokenizer.model").is_file():
        return False
    cfg_path = folder / "tokenizer_config.json"
    if not cfg_path.is_file():
        return True
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    return cfg.get("tokenizer_class") in (None, "LlamaTokenizer", "LlamaTokenizerFast") and not cfg.get("chat_template")


def load_tokenizer(folder: str | Path) -> LlamaSPTokenizer | HFTokenizer:
    """The checkpoint's tokenizer: sentencepiece for LLaMA-1/2 folders, ``AutoTokenizer`` otherwise."""
    folder = Path(folder)
    if uses_sentencepiece(folder):
        return LlamaSPTokenizer.from_pretrained(folder)
    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ConfigError(f"{folder}: no tokenizer files (tokenizer.json, tokenizer_config.json or tokenizer.model)")
    return HFTokenizer.from_pretrained(folder)
