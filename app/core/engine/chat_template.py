"""Render a model's chat template safely, keeping users' text apart from the template's structure.

Templates come from GGUF files anyone can publish, so they render in Jinja's
``ImmutableSandboxedEnvironment`` (the hole behind CVE-2024-34359 was a plain Environment), in a
warm child process held to 2 s and 64 MiB per render (``template_process``: the bounds must hold
against work done inside one C call, which no in-process budget sees), with a bounded ``range``
and an output cap inside for clearer messages. Jinja2 before 3.1.6 had sandbox escapes through ``str.format``
(CVE-2024-56326, CVE-2025-27516), so an older Jinja2 renders nothing.

Everything the client sent (message contents and names, tools, tool calls) is wrapped in
private-use sentinels while rendering; afterwards the prompt splits into template pieces (whose
special-token text becomes control tokens) and user pieces (tokenized as plain text, so a typed
``<|im_start|>`` stays text).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.ext import LoopControlExtension  # imported here so the fork server preloads it
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.engine.request import ChatMessage
from app.core.engine.template_process import RenderLimits, RenderPool
from app.core.errors import TemplateError

MAX_OUTPUT_CHARS = 8_000_000
MAX_RANGE_ITEMS = 100_000
RENDER_LIMITS = RenderLimits(deadline_s=2.0, memory_bytes=64 * 2**20)
MIN_JINJA2 = (3, 1, 6)


@dataclass(frozen=True)
class PromptPiece:
    text: str
    trusted: bool  # True: template structure, special-token text is parsed; False: user text


@dataclass(frozen=True)
class ChatTemplate:
    source: str  # the Jinja text
    bos_token: str = ""
    eos_token: str = ""
    origin: str = "gguf"  # or the fallback's name
    stop: tuple[str, ...] = ()  # extra stop strings the format needs (fallbacks)


# A plain transcript for models that ship no template (base models such as the starter model).
# Base models continue text, so the format is one they have seen plenty of, and the next
# "User:" line ends the reply.
TRANSCRIPT_FALLBACK = ChatTemplate(
    source=(
        "{% for m in messages %}"
        "{% if m.role == 'system' %}{{ m.content }}\n\n"
        "{% elif m.role == 'user' %}User: {{ m.content }}\n"
        "{% elif m.role == 'assistant' %}Assistant: {{ m.content }}\n"
        "{% else %}{{ m.role | capitalize }}: {{ m.content }}\n{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    ),
    origin="fallback: plain transcript",
    stop=("\nUser:", "\nAssistant:"),
)


class _BudgetExceeded(Exception):
    pass


class _RenderBudget:
    def __init__(self) -> None:
        self.deadline = time.monotonic() + RENDER_LIMITS.deadline_s
        self.items = 0

    def tick(self) -> None:
        self.items += 1
        if self.items % 1024 == 0 and time.monotonic() > self.deadline:
            raise _BudgetExceeded("the chat template took too long to render")


def _bounded_range(budget: _RenderBudget) -> Any:
    def safe_range(*args: int) -> Iterator[int]:
        values = range(*args)
        if len(values) > MAX_RANGE_ITEMS:
            raise _BudgetExceeded(f"the chat template asked for a range of {len(values)} items")
        for value in values:
            budget.tick()
            yield value

    return safe_range


def _raise_exception(message: str) -> None:
    # Templates call this to reject conversations they cannot format (e.g. roles out of order).
    raise TemplateError(f"the model's chat template refused this conversation: {message}")


def _tojson(value: Any, indent: int | None = None) -> str:
    # Jinja's tojson escapes HTML; templates expect plain JSON, as transformers renders it.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _strftime_now(fmt: str) -> str:
    return datetime.now(UTC).strftime(fmt)


class _TemplateSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a cap on ``*`` and ``**`` (``'x' * 10**12`` would exhaust RAM)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 1024:
                raise _BudgetExceeded("the chat template raised a number to a huge power")
            return left**right
        for seq, count in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
            if sized and len(seq) * count > MAX_OUTPUT_CHARS:
                raise _BudgetExceeded("the chat template built an oversized string")
        return left * right


class _UserText(str):
    """A client's string between the sentinels. Its ``repr`` keeps the sentinels as characters
    (Python escapes private-use characters in a repr), so a template that prints a whole dict
    or list still marks the client's strings inside it."""

    def __repr__(self) -> str:
        return self[0] + str.__repr__(self[1:-1]) + self[-1]


# Strings a template may compare with literals (types, roles, names, ids such as Mistral's
# 9-character tool-call ids) and that cannot spell a control token, which every vocabulary
# delimits with punctuation (<|im_start|>, <start_of_turn>, [INST]).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_-]*")


class _Sentinels:
    """Two private-use characters that appear in nothing the client sent."""

    def __init__(self, client_data: object) -> None:
        used = set(json.dumps(client_data, ensure_ascii=False, default=str))
        free = (chr(c) for c in range(0xE000, 0xF8FF) if chr(c) not in used)
        self.open = next(free)
        self.close = next(free)

    def wrap(self, text: str) -> str:
        return _UserText(f"{self.open}{text}{self.close}") if text else ""

    def mark(self, value: Any) -> Any:
        """Client data (tools, tool calls, names) with its strings marked as user text.

        Plain words stay bare, keys included, so templates still find ``function.name`` and
        compare ``type == "function"``; any other string is wrapped, wherever it sits.
        """
        if isinstance(value, str):
            return value if _PLAIN_WORD.fullmatch(value) else self.wrap(value)
        if isinstance(value, dict):
            return {self.mark(str(k)): self.mark(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mark(v) for v in value]
        return value


def _message_dict(message: ChatMessage, sentinels: _Sentinels) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": sentinels.wrap(message.content)}
    if message.name:
        data["name"] = sentinels.mark(message.name)
    data.update(sentinels.mark(message.extra))
    return data


def _split(rendered: str, sentinels: _Sentinels) -> list[PromptPiece]:
    pieces: list[PromptPiece] = []
    rest = rendered
    while rest:
        start = rest.find(sentinels.open)
        if start < 0:
            pieces.append(PromptPiece(rest.replace(sentinels.close, ""), trusted=True))
            break
        if start:
            pieces.append(PromptPiece(rest[:start].replace(sentinels.close, ""), trusted=True))
        rest = rest[start + 1 :]
        end = rest.find(sentinels.close)
        # A template that cut a message short loses its closing sentinel: everything after is
        # treated as user text, the safe side.
        user, rest = (rest, "") if end < 0 else (rest[:end], rest[end + 1 :])
        pieces.append(PromptPiece(user.replace(sentinels.open, ""), trusted=False))
    return [piece for piece in pieces if piece.text]


class TemplateRenderer:
    """Renders chat templates in warm, bounded child processes; safe from any thread.

    Its owner (the engine) closes it: that stops the children. Creating one starts nothing; the
    first render starts a child, later renders reuse it (a pipe round trip, not a fork).
    """

    def __init__(self) -> None:
        self._pool = RenderPool(render_text, RENDER_LIMITS)

    def render(
        self,
        template: ChatTemplate,
        messages: Sequence[ChatMessage],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[PromptPiece]:
        """Render ``messages`` into prompt pieces; raise ``TemplateError`` for any failure."""
        if not jinja2_is_patched():
            raise TemplateError(
                f"Jinja2 {jinja2.__version__} has known sandbox escapes; "
                f"install Jinja2 {'.'.join(map(str, MIN_JINJA2))} or later to use chat templates"
            )
        sentinels = _Sentinels(
            [[m.content, m.name, m.extra] for m in messages] + [list(tools) if tools else []]
        )
        variables = {
            "messages": [_message_dict(m, sentinels) for m in messages],
            "add_generation_prompt": add_generation_prompt,
            "bos_token": template.bos_token,
            "eos_token": template.eos_token,
            "tools": sentinels.mark(list(tools)) if tools else None,
        }
        return _split(self._pool.run(template.source, variables), sentinels)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> TemplateRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def jinja2_is_patched() -> bool:
    parts = jinja2.__version__.split(".")[:3]
    numbers = tuple(int(p) if p.isdigit() else 0 for p in parts)
    return numbers >= MIN_JINJA2


def render_text(source: str, variables: dict[str, Any]) -> str:
    """The sandboxed render itself; runs in a ``TemplateRenderer``'s child process."""
    budget = _RenderBudget()
    env = _TemplateSandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        extensions=[LoopControlExtension],
    )
    env.filters["tojson"] = _tojson
    env.globals.update(
        range=_bounded_range(budget),
        raise_exception=_raise_exception,
        strftime_now=_strftime_now,
    )
    try:
        compiled = env.from_string(source)
        chunks: list[str] = []
        size = 0
        for chunk in compiled.generate(**variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise _BudgetExceeded("the chat template produced an oversized prompt")
            budget.tick()
            chunks.append(chunk)
    except TemplateError:
        raise
    except _BudgetExceeded as exc:
        raise TemplateError(f"the model's chat template was stopped: {exc}") from exc
    except SecurityError as exc:
        raise TemplateError(f"the model's chat template tried something unsafe: {exc}") from exc
    except (JinjaTemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise TemplateError(f"the model's chat template failed to render: {exc}") from exc
    except RecursionError as exc:
        raise TemplateError("the model's chat template recursed too deeply") from exc
    except OverflowError as exc:
        raise TemplateError(f"the model's chat template failed to render: {exc}") from exc
    return "".join(chunks)


_PROBE_TOOL = "homefire_probe_tool"


def probe_template(templates: TemplateRenderer, template: ChatTemplate) -> tuple[bool, bool]:
    """(renders tools, generation prompt opens a <think> block), from two test renders: what a
    loaded model reports, and what /api/show says of a model read from its header alone."""
    probe = (ChatMessage(role="user", content="hi"),)
    tool = {
        "type": "function",
        "function": {
            "name": _PROBE_TOOL,
            "description": "probe",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    try:
        plain = "".join(piece.text for piece in templates.render(template, probe))
    except TemplateError:
        return False, False
    try:
        with_tools = "".join(p.text for p in templates.render(template, probe, tools=[tool]))
    except TemplateError:
        with_tools = ""
    return _PROBE_TOOL in with_tools, plain.rstrip().endswith("<think>")
