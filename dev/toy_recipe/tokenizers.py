"""The two tokenizers of the toy recipe, trained on toy text only, deterministically.

* :func:`train_sentencepiece`: the LLM's ``tokenizer.model``, a sentencepiece BPE model with the
  settings that give LLaMA's tokenizer its behaviour (identity normalisation, extra whitespace
  kept, a dummy prefix space, digits split, byte fallback) so that the reference training
  preprocessing (round lengths, the ``- 2`` of ``preprocess_v1``) holds for it exactly as it does
  for Vicuna's. ``character_coverage=1.0`` keeps every character of the training text (the
  Chinese of the MMBench-CN style data included); anything else falls back to bytes.
* :func:`build_clip_tokenizer`: ``vocab.json`` + ``merges.txt`` for ``CLIPTokenizer``: a
  byte-level BPE learned on the toy captions until (nearly) every word is one token, laid out as
  OpenAI CLIP's files are (256 byte symbols, the same with ``</w>``, merged symbols, then
  ``<|startoftext|>`` and ``<|endoftext|>``).
"""
from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

#: Fixed sentencepiece options (besides the vocabulary size); ``num_threads=1`` and an unshuffled,
#: unsampled input make the model a pure function of the text.
SENTENCEPIECE_OPTIONS = dict(
    model_type="bpe",
    character_coverage=1.0,
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=True,
    allow_whitespace_only_pieces=True,
    split_by_unicode_script=True,
    split_by_whitespace=True,
    max_sentencepiece_length=16,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    num_threads=1,
    input_sentence_size=0,
    shuffle_input_sentence=False,
    hard_vocab_limit=False,
    minloglevel=2,
)


def train_sentencepiece(sentences: Iterable[str], out_dir: Path, vocab_size: int = 1024) -> Path:
    """Train the LLM tokenizer and write ``tokenizer.model`` + ``tokenizer_config.json``."""
    import sentencepiece as spm

    from aligngpt.processing import LlamaSPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)), model_writer=buf, vocab_size=vocab_size, **SENTENCEPIECE_OPTIONS
    )
    path = out_dir / "tokenizer.model"
    path.write_bytes(buf.getvalue())
    LlamaSPTokenizer(path).save_pretrained(out_dir)  # writes tokenizer_config.json next to it
    return path


# ---------------------------------------------------------------------------- CLIP BPE
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
EOW = "</w>"
# CLIPTokenizer's pre-tokenisation keeps runs of letters, single digits and runs of other
# non-space characters (after lower-casing); ASCII-only here, which the toy captions are.
_WORDS = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")


def byte_symbols() -> list[str]:
    """The reversible byte -> printable character table of byte-level BPE (GPT-2 / CLIP).

    Printable Latin-1 bytes map to themselves; the other 68 bytes map to code points 256 and up,
    in byte order. Returned in byte order (index = byte value).
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table: dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _symbols_of(word: str, table: list[str]) -> tuple[str, ...]:
    chars = [table[b] for b in word.encode("utf-8")]
    chars[-1] = chars[-1] + EOW
    return tuple(chars)


def learn_bpe(texts: Iterable[str], max_merges: int = 4000) -> list[tuple[str, str]]:
    """Greedy BPE on the word counts of ``texts``: most frequent adjacent pair first.

    Ties break on the pair itself (lexicographic), so the merges are deterministic. Stops when
    every word is a single symbol or after ``max_merges``.
    """
    table = byte_symbols()
    counts: Counter = Counter()
    for text in texts:
        counts.update(_WORDS.findall(text.lower()))
    words = {_symbols_of(w, table): c for w, c in counts.items()}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter = Counter()
        for symbols, c in words.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        new_words = {}
        for symbols, c in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        words = new_words
    return merges


def build_clip_tokenizer(texts: Iterable[str], out_dir: Path, max_length: int = 77) -> int:
    """Write ``vocab.json``, ``merges.txt`` and the tokenizer configs; returns the vocabulary size."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = byte_symbols()
    merges = learn_bpe(texts)
    vocab: dict[str, int] = {}
    for sym in table + [s + EOW for s in table]:
        vocab.setdefault(sym, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab.setdefault(BOS, len(vocab))
    vocab.setdefault(EOS, len(vocab))
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (out_dir / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer", "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS,
        "model_max_length": max_length, "do_lower_case": True, "clean_up_tokenization_spaces": False,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    return len(vocab)
