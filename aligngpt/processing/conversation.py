"""Conversation templates of the released LLaVA-1.5 / AlignGPT models.

System strings and separators are protocol constants, reproduced from
haotian-liu/LLaVA ``llava/conversation.py`` (identical in AlignGPT ``src/utils/conversation.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

# Source: LLaVA llava/conversation.py (conv_vicuna_v1, conv_llava_v1, conv_llava_plain,
# conv_llama_2, conv_llava_llama_2).
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
LLAMA_2_SYSTEM = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe.  "
    "Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. "
    "Please ensure that your responses are socially unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of answering "
    "something not correct. If you don't know the answer to a question, please don't share false information."
)
LLAVA_LLAMA_2_SYSTEM = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)


@dataclass(frozen=True)
class Template:
    name: str
    system: str
    roles: tuple[str, str]
    style: str  # "two" | "plain" | "llama_2"
    sep: str
    sep2: str

    def render(self, messages: list[tuple[str, str | None]]) -> str:
        """Render (role, text) turns; a final ``None`` text leaves the assistant turn open."""
        if self.style == "two":
            seps = (self.sep, self.sep2)
            out = self.system + seps[0]
            for i, (role, text) in enumerate(messages):
                out += f"{role}: {text}{seps[i % 2]}" if text else f"{role}:"
            return out
        if self.style == "plain":
            seps = (self.sep, self.sep2)
            out = self.system
            for i, (_, text) in enumerate(messages):
                if text:
                    out += text + seps[i % 2]
            return out
        if self.style == "llama_2":
            out = ""
            for i, (_, text) in enumerate(messages):
                if not text:
                    continue
                if i == 0 and self.system:
                    text = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" + text
                if i % 2 == 0:
                    out += self.sep + f"[INST] {text} [/INST]"
                else:
                    out += " " + text + " " + self.sep2
            # The reference strips leading separator characters (str.lstrip semantics).
            return out.lstrip(self.sep)
        raise ConfigError(f"unknown separator style {self.style!r}")


TEMPLATES: dict[str, Template] = {
    "vicuna_v1": Template("vicuna_v1", VICUNA_SYSTEM, ("USER", "ASSISTANT"), "two", " ", "</s>"),
    "llava_v1": Template("llava_v1", LLAVA_V1_SYSTEM, ("USER", "ASSISTANT"), "two", " ", "</s>"),
    "plain": Template("plain", "", ("", ""), "plain", "\n", "\n"),
    "llama_2": Template("llama_2", LLAMA_2_SYSTEM, ("USER", "ASSISTANT"), "llama_2", "<s>", "</s>"),
    "llava_llama_2": Template("llava_llama_2", LLAVA_LLAMA_2_SYSTEM, ("USER", "ASSISTANT"), "llama_2", "<s>", "</s>"),
}
#: Training-script names (``--version``) that map onto templates; unknown names fall back to
#: vicuna_v1 as the reference train.py does.
TEMPLATE_ALIASES = {"v1": "vicuna_v1", "v0": "vicuna_v1", "llava_llama_2": "llava_llama_2"}


def get_template(name: str) -> Template:
    name = TEMPLATE_ALIASES.get(name, name)
    if name not in TEMPLATES:
        raise ConfigError(f"unknown conversation template {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def build_prompt(question: str, has_image: bool, template: str = "vicuna_v1") -> str:
    """The single-turn evaluation prompt: ``<image>\\n`` + question, assistant turn left open."""
    tpl = get_template(template)
    text = ("<image>\n" + question) if has_image else question
    if tpl.style == "plain":
        return text
    return tpl.render([(tpl.roles[0], text), (tpl.roles[1], None)])
