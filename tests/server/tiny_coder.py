"""A tiny GGUF like a small coder-instruct model: FIM tokens and a ChatML template with tools.

Built on ``tests.fixtures.tiny_llama`` (random weights, loads in milliseconds) with three FIM
control tokens added to its vocabulary (llama.cpp recognises them by their text) and a
Hermes/Qwen-style template that lists the tools and asks for ``<tool_call>`` blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest import mock

import gguf

from tests.fixtures import tiny_llama

FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
# Qwen2.5-Coder's repository-level FIM tokens (llama.cpp recognises them by their text too).
REPOSITORY_TOKENS = ("<|repo_name|>", "<|file_sep|>")

HERMES_TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "You may call functions. Signatures:\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    'Answer with <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>\n'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    "{% for call in message.tool_calls %}<tool_call>\n"
    '{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}'
    "\n</tool_call>{% endfor %}<|im_end|>\n"
    "{% elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n"
    "{{ message.content }}\n</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


_PLAIN_VOCABULARY = tiny_llama.vocabulary


def _vocabulary_with(
    controls: tuple[str, ...],
) -> Callable[[], tuple[list[str], list[float], list[int]]]:
    def vocabulary() -> tuple[list[str], list[float], list[int]]:
        tokens, scores, types = _PLAIN_VOCABULARY()
        for text in controls:
            tokens.append(text)
            scores.append(0.0)
            types.append(gguf.TokenType.CONTROL)
        return tokens, scores, types

    return vocabulary


def write_tiny_coder(
    path: Path, chat_template: str = HERMES_TOOLS_TEMPLATE, *, repository_tokens: bool = False
) -> Path:
    controls = FIM_TOKENS + (REPOSITORY_TOKENS if repository_tokens else ())
    with mock.patch.object(tiny_llama, "vocabulary", _vocabulary_with(controls)):
        # Its vocabulary is mostly single characters: tool lists need room.
        return tiny_llama.write_tiny_llama(path, chat_template=chat_template, context_length=4096)
