"""Fill-in-the-middle prompts built from the model's own FIM tokens.

Prefix-suffix-middle order (``<PRE> prefix <SUF> suffix <MID>``), the layout every FIM-trained
GGUF we know (Qwen2.5-Coder, StarCoder2, CodeLlama, DeepSeek-Coder, Codestral) accepts. The code
around the cursor is the user's text: it is tokenized without special tokens.
"""

from __future__ import annotations

from app.core.engine.backend import SpecialTokens
from app.core.engine.prompt import Tokenizer
from app.core.errors import UnsupportedRequest


def supports_fim(special: SpecialTokens) -> bool:
    return None not in (special.fim_prefix, special.fim_suffix, special.fim_middle)


def fim_tokens(tokenizer: Tokenizer, special: SpecialTokens, prefix: str, suffix: str) -> list[int]:
    if special.fim_prefix is None or special.fim_suffix is None or special.fim_middle is None:
        raise UnsupportedRequest(
            "this model has no fill-in-the-middle tokens, so it cannot complete with a suffix; "
            "use a code model trained for FIM (e.g. Qwen2.5-Coder) or send a prompt only"
        )
    return [
        special.fim_prefix,
        *tokenizer.tokenize(prefix, special=False),
        special.fim_suffix,
        *tokenizer.tokenize(suffix, special=False),
        special.fim_middle,
    ]
