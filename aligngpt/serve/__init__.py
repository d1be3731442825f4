"""``aligngpt-eval serve``: an OpenAI-compatible chat-completions server for AlignGPT models.

    aligngpt-eval serve --model path/to/checkpoint --port 8000
    curl http://127.0.0.1:8000/v1/chat/completions -d '{"messages": [...]}'

Images travel as ``data:image/...;base64`` URLs; concurrent requests with the same decoding
settings share one ``model.generate`` call; greedy answers equal the evaluation harness's
(fp32: our model's greedy rows do not depend on the batch; in fp16/bf16 on a GPU, kernels may
round differently by batch shape, so ``--max-batch-size 1`` is the bit-exact setting there).
Modules: :mod:`.protocol` (wire format), :mod:`.prompt` (chat template), :mod:`.runner`
(model inputs and outputs), :mod:`.batching` (the queue and worker), :mod:`.server` (HTTP).
"""
from __future__ import annotations

from .batching import Batcher, BatchStats, BatcherClosed, QueueFull
from .protocol import ApiError, ChatRequest, Decoding, Turn, parse_chat_request
from .prompt import render_chat
from .runner import Completion, ModelRunner, Prepared
from .server import ChatServer, ServeConfig, create_server

__all__ = [
    "ApiError", "Batcher", "BatchStats", "BatcherClosed", "ChatRequest", "ChatServer", "Completion",
    "Decoding", "ModelRunner", "Prepared", "QueueFull", "ServeConfig", "Turn", "create_server",
    "parse_chat_request", "render_chat",
]
