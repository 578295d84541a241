"""How a chat request's ``tools`` and ``tool_choice`` reach the model.

- The model's template renders tools (``ModelInfo.supports_tools``): they go to the template and
  the reply is parsed in the model's own format.
- It does not: the tools are described in a system message asking for a JSON call, and the
  reply is parsed as JSON.
- ``tool_choice`` requires a call ("required" or a named function): a grammar makes the reply a
  JSON call to one of the allowed functions, whatever the model would have preferred.
- ``tool_choice: "none"``: tools are left out entirely.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.engine.backend import grammar_from_json_schema
from app.core.engine.request import ChatMessage
from app.core.errors import GrammarRefused, UnsupportedRequest
from app.core.server.errors import ApiError
from app.core.server.response_format import refusal

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class ToolPlan:
    template_tools: tuple[dict[str, Any], ...] = ()
    instructions: str | None = None  # a system note for models whose template has no tools
    grammar: str | None = None
    names: tuple[str, ...] = ()  # non-empty: parse tool calls out of the reply

    def apply(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        if self.instructions is None:
            return tuple(messages)
        if messages and messages[0].role == "system":
            first = messages[0]
            merged = ChatMessage(
                role="system",
                content=f"{first.content}\n\n{self.instructions}",
                name=first.name,
                extra=first.extra,
            )
            return (merged, *messages[1:])
        return (ChatMessage(role="system", content=self.instructions), *messages)


def normalise_tools(tools: Sequence[Any] | None) -> tuple[dict[str, Any], ...]:
    """OpenAI-shaped function tools; a tool without parameters gets an empty object schema."""
    normalised: list[dict[str, Any]] = []
    for i, tool in enumerate(tools or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(400, f"tools[{i}] must be a function with a name", param="tools")
        if tool.get("type", "function") != "function":
            raise ApiError(400, f"tools[{i}]: only function tools are supported", param="tools")
        parameters = function.get("parameters")
        if not isinstance(parameters, dict):
            parameters = {"type": "object", "properties": {}}
        normalised.append({"type": "function", "function": {**function, "parameters": parameters}})
    return tuple(normalised)


def _forced_name(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
        if isinstance(name, str):
            return name
        raise ApiError(400, "tool_choice must name a function", param="tool_choice")
    return None


def plan_tools(
    tools: Sequence[Any] | None, tool_choice: Any, model_supports_tools: bool
) -> ToolPlan:
    specs = normalise_tools(tools)
    if not specs or tool_choice == "none":
        return ToolPlan()
    if tool_choice not in (None, "auto", "required", "any") and not isinstance(tool_choice, dict):
        raise ApiError(
            400, "tool_choice must be 'none', 'auto', 'required' or a function", param="tool_choice"
        )
    names = tuple(spec["function"]["name"] for spec in specs)
    forced = _forced_name(tool_choice)
    if forced is not None and forced not in names:
        raise ApiError(
            400, f"tool_choice names {forced!r}, which is not in tools", param="tool_choice"
        )
    required = forced is not None or tool_choice in ("required", "any")
    allowed = {
        i: spec
        for i, spec in enumerate(specs)
        if forced is None or spec["function"]["name"] == forced
    }
    return ToolPlan(
        template_tools=specs if model_supports_tools else (),
        instructions=None if model_supports_tools else _instructions(specs),
        grammar=call_grammar(allowed) if required else None,
        names=names,
    )


def _instructions(specs: Sequence[dict[str, Any]]) -> str:
    listed = "\n".join(json.dumps(spec["function"], ensure_ascii=False) for spec in specs)
    return (
        "You can call these functions:\n"
        f"{listed}\n"
        "To call one, reply with only a JSON object "
        '{"name": <function name>, "arguments": <object of arguments>} and nothing else. '
        "Otherwise answer normally."
    )


def call_grammar(specs: dict[int, dict[str, Any]]) -> str:
    """A grammar for one JSON call ``{"name": ..., "arguments": {...}}`` to one of ``specs``
    (keyed by their index in ``tools``).

    A parameter schema the grammar converter cannot express falls back to any JSON object for
    that function: refusing an agent's request over its schema would stop the agent. One over
    the grammar limits (or with an invalid regex) is refused, naming the field.
    """
    options = []
    for i, spec in specs.items():
        function = spec["function"]
        parameters = function["parameters"]
        try:
            grammar_from_json_schema(parameters)
        except GrammarRefused as exc:
            raise refusal(exc, f"tools.{i}.function.parameters") from exc
        except UnsupportedRequest:
            parameters = _ANY_OBJECT
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema = options[0] if len(options) == 1 else {"oneOf": options}
    try:
        return grammar_from_json_schema(schema)
    except UnsupportedRequest as exc:  # each tool fits the limits, all of them together do not
        raise ApiError(400, exc.user_message, code="unsupported_schema", param="tools") from exc
