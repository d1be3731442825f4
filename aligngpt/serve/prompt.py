"""Rendering a chat conversation with the model's own conversation template.

The contract that matters: a single user turn with an image and text ``q`` renders to exactly
``processor.build_prompt(q, has_image=True)`` (what the evaluation harness feeds the model), so
the server answers like the benchmarks ran. Multi-turn chats use the same template's
``render``; a system message replaces the template's system text; the image placeholder
``<image>\\n`` opens the user turn that carried the image (LLaVA's convention).
"""
from __future__ import annotations

from dataclasses import replace

from ..processing.conversation import build_prompt, get_template
from .protocol import Turn

IMAGE_PREFIX = "<image>\n"


def _turn_text(turn: Turn) -> str:
    return IMAGE_PREFIX + turn.text if turn.has_image else turn.text


def render_chat(turns: list[Turn], system: str | None, template: str) -> str:
    """The prompt string for ``turns`` (user/assistant alternating, ending with user)."""
    tpl = get_template(template)
    if system is None and len(turns) == 1:
        # Identical to the evaluation prompt by construction.
        return build_prompt(turns[0].text, turns[0].has_image, template)
    if system is not None:
        tpl = replace(tpl, system=system)
    roles = {"user": tpl.roles[0], "assistant": tpl.roles[1]}
    messages: list[tuple[str, str | None]] = [(roles[t.role], _turn_text(t)) for t in turns]
    messages.append((tpl.roles[1], None))
    return tpl.render(messages)
