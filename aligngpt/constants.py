"""Constants fixed by the released AlignGPT / LLaVA-1.5 code (docs/reference-code.md, section 1)."""

IGNORE_INDEX = -100
IMAGE_TOKEN_INDEX = -200
DEFAULT_IMAGE_TOKEN = "<image>"
DEFAULT_N_INDICATORS = 8

#: Hub id of the vision tower the released checkpoints were trained with.
CLIP_L14_336 = "openai/clip-vit-large-patch14-336"
