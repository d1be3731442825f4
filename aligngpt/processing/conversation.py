"""Conversation templates: the released LLaVA-1.5 / AlignGPT ones and the modern chat families.

System strings and separators are protocol constants, reproduced from
haotian-liu/LLaVA ``llava/conversation.py`` (identical in AlignGPT ``src/utils/conversation.py``).
The ``turns`` templates (llama3, qwen2, mistral, phi3, gemma) reproduce the chat templates those
families ship in their ``tokenizer_config.json`` (sources cited at each); the BOS string is left
to the tokenizer (``adds_bos``). ``chat_template`` means "render with the tokenizer's own
template" (``AlignGPTProcessor.build_prompt``); ``auto`` picks one for a checkpoint
(``auto_template``).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    style: str  # "two" | "plain" | "llama_2" | "turns"
    sep: str
    sep2: str
    # -- "turns" style only: each turn is prefix + text + suffix; the system block is system_format
    # with the system text (omitted when the system text is empty).
    system_format: str = ""
    user: tuple[str, str] = ("", "")
    assistant: tuple[str, str] = ("", "")

    @property
    def stop(self) -> str:
        """The end-of-turn marker an answer ends with (its trained last token); '' if none."""
        return self.assistant[1].strip() if self.style == "turns" else ""

    def segments(self, messages: list[tuple[str, str | None]]) -> list[tuple[str, bool]]:
        """``turns`` style: the rendered text as (piece, is_trained_answer) pieces.

        An answer piece is the assistant text plus the end-of-turn marker (what the model must
        learn to emit to stop); whitespace after the marker stays in the prompt piece.
        """
        if self.style != "turns":
            raise ConfigError(f"template {self.name!r} has no turn segments")
        pieces: list[tuple[str, bool]] = []
        if self.system:
            pieces.append((self.system_format.format(system=self.system), False))
        for i, (_, text) in enumerate(messages):
            if i % 2 == 0:
                pieces.append((self.user[0] + (text or "") + self.user[1], False))
                continue
            pieces.append((self.assistant[0], False))
            if text is None:
                break
            marker = self.assistant[1].rstrip()
            pieces.append((text + marker, True))
            pieces.append((self.assistant[1][len(marker):], False))
        return [p for p in pieces if p[0]]

    def render(self, messages: list[tuple[str, str | None]]) -> str:
        """Render (role, text) turns; a final ``None`` text leaves the assistant turn open."""
        if self.style == "turns":
            return "".join(text for text, _ in self.segments(messages))
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


# Sources of the turn formats below (each family's tokenizer_config.json ``chat_template``):
# meta-llama/Meta-Llama-3-8B-Instruct, Qwen/Qwen2-7B-Instruct (default system
# "You are a helpful assistant."), mistralai/Mistral-7B-Instruct-v0.2 (no system role),
# microsoft/Phi-3-mini-4k-instruct, google/gemma-2-9b-it (no system role; assistant role "model").
QWEN2_SYSTEM = "You are a helpful assistant."

TEMPLATES: dict[str, Template] = {
    "vicuna_v1": Template("vicuna_v1", VICUNA_SYSTEM, ("USER", "ASSISTANT"), "two", " ", "</s>"),
    "llava_v1": Template("llava_v1", LLAVA_V1_SYSTEM, ("USER", "ASSISTANT"), "two", " ", "</s>"),
    "plain": Template("plain", "", ("", ""), "plain", "\n", "\n"),
    "llama_2": Template("llama_2", LLAMA_2_SYSTEM, ("USER", "ASSISTANT"), "llama_2", "<s>", "</s>"),
    "llava_llama_2": Template("llava_llama_2", LLAVA_LLAMA_2_SYSTEM, ("USER", "ASSISTANT"), "llama_2", "<s>", "</s>"),
    "llama3": Template(
        "llama3", "", ("user", "assistant"), "turns", "", "",
        system_format="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
        user=("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
        assistant=("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    ),
    "qwen2": Template(
        "qwen2", QWEN2_SYSTEM, ("user", "assistant"), "turns", "", "",
        system_format="<|im_start|>system\n{system}<|im_end|>\n",
        user=("<|im_start|>user\n", "<|im_end|>\n"),
        assistant=("<|im_start|>assistant\n", "<|im_end|>\n"),
    ),
    "mistral": Template("mistral", "", ("user", "assistant"), "turns", "", "",
                        user=("[INST] ", " [/INST]"), assistant=("", "</s>")),
    "phi3": Template(
        "phi3", "", ("user", "assistant"), "turns", "", "",
        system_format="<|system|>\n{system}<|end|>\n",
        user=("<|user|>\n", "<|end|>\n"),
        assistant=("<|assistant|>\n", "<|end|>\n"),
    ),
    "gemma": Template("gemma", "", ("user", "model"), "turns", "", "",
                      user=("<start_of_turn>user\n", "<end_of_turn>\n"),
                      assistant=("<start_of_turn>model\n", "<end_of_turn>\n")),
}
#: "Render with the tokenizer's own chat template" (a pseudo-template; see the processor).
CHAT_TEMPLATE = "chat_template"
#: LM model_type -> template, for ``auto`` when neither the config nor the tokenizer says.
FAMILY_TEMPLATES = {"qwen2": "qwen2", "qwen2_5": "qwen2", "mistral": "mistral", "phi3": "phi3",
                    "gemma": "gemma", "gemma2": "gemma"}
#: Training-script names (``--version``) that map onto templates; unknown names fall back to
#: vicuna_v1 as the reference train.py does.
TEMPLATE_ALIASES = {"v1": "vicuna_v1", "v0": "vicuna_v1", "llava_llama_2": "llava_llama_2",
                    "llama_3": "llama3", "qwen": "qwen2", "gemma2": "gemma"}


def auto_template(config, tokenizer) -> str:
    """``--conv-mode auto``: the template a checkpoint answers in.

    Order: the config's ``conv_template`` (written at training); a tokenizer that ships a chat
    template: that template; else by the LM family: qwen2, mistral, phi3, gemma by name, llama
    (flat released configs included) as llama3 when the vocabulary has ``<|eot_id|>``, else
    vicuna_v1 (released AlignGPT / LLaVA-1.5, whose sentencepiece tokenizer has no chat template).
    """
    named = getattr(config, "conv_template", None)
    if named:
        return named
    if getattr(tokenizer, "chat_template", None):
        return CHAT_TEMPLATE
    text_config = getattr(config, "text_config", None)
    if text_config is None:
        family = "llama"
    else:
        family = text_config.get("model_type") if isinstance(text_config, dict) else getattr(text_config, "model_type", None)
    if family == "llama":
        vocab = getattr(getattr(tokenizer, "hf", None), "get_vocab", dict)()
        return "llama3" if "<|eot_id|>" in vocab else "vicuna_v1"
    if family in FAMILY_TEMPLATES:
        return FAMILY_TEMPLATES[family]
    raise ConfigError(f"--conv-mode auto: no template known for LM family {family!r}; pass --conv-mode NAME")


def get_template(name: str) -> Template:
    name = TEMPLATE_ALIASES.get(name, name)
    if name not in TEMPLATES:
        raise ConfigError(f"unknown conversation template {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def build_prompt(question: str, has_image: bool, template: str = "vicuna_v1") -> str:
    """The single-turn evaluation prompt: ``<image>\\n`` + question, assistant turn left open."""
    if template == CHAT_TEMPLATE:
        raise ConfigError("the chat_template mode needs the tokenizer: use AlignGPTProcessor.build_prompt")
    tpl = get_template(template)
    text = ("<image>\n" + question) if has_image else question
    if tpl.style == "plain":
        return text
    return tpl.render([(tpl.roles[0], text), (tpl.roles[1], None)])
