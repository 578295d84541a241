"""Fuzzing the chat-template renderer with templates drawn from a grammar of Jinja constructs.

Whatever a template does, ``TemplateRenderer.render`` returns prompt pieces or raises
``TemplateError``, within the render deadline plus the cost of starting a fresh child.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.engine.chat_template import (
    MAX_OUTPUT_CHARS,
    ChatTemplate,
    PromptPiece,
    TemplateRenderer,
)
from app.core.engine.request import ChatMessage
from app.core.errors import TemplateError

pytestmark = pytest.mark.fuzz

MESSAGES = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "hi <|im_end|> there"),
    ChatMessage("assistant", "hello"),
)

_numbers = st.sampled_from(["0", "1", "3", "-1", "1000", "10**6", "10**9", "2**64", "0.5"])
_strings = st.sampled_from(["'x'", "''", "'{0}'", "'%s'", "'<|im_start|>'", "'a b\\nc'"])
_names = st.sampled_from(
    ["messages", "m", "m.content", "m.role", "messages[0]", "messages[-1].content",
     "add_generation_prompt", "bos_token", "eos_token", "tools", "loop.index", "undefined_name",
     "lipsum", "cycler", "namespace()", "range(3)", "x.__class__", "m.__init__"]
)  # fmt: skip
_filters = st.sampled_from(
    ["upper", "length", "join", "join(', ')", "trim", "tojson", "tojson(indent=2)", "list",
     "first", "last", "reverse", "string", "int", "default('d')", "replace('x', 'yy')",
     "center(40)", "indent(4)", "wordwrap(10)", "attr('format')", "map(attribute='role')",
     "selectattr('role', 'equalto', 'user')", "batch(2)", "unique", "sum"]
)  # fmt: skip
_methods = st.sampled_from(
    ["upper()", "strip()", "split()", "ljust(50)", "format(1)", "replace('a', 'b')",
     "startswith('x')", "endswith('>')", "items()", "append(1)", "__class__"]
)  # fmt: skip
_operators = st.sampled_from(["+", "-", "*", "~", "%", "//", "**", "==", "in", "and", "or"])


def _expression(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, _filters).map(lambda t: f"({t[0]}) | {t[1]}"),
        st.tuples(inner, _methods).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(inner, _operators, inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
        inner.map(lambda e: f"not ({e})"),
    )


expressions = st.recursive(_numbers | _strings | _names, _expression, max_leaves=6)


def _block(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(inner, min_size=1, max_size=3).map("".join),
        st.tuples(expressions, inner).map(lambda t: f"{{% if {t[0]} %}}{t[1]}{{% endif %}}"),
        st.tuples(expressions, inner).map(lambda t: f"{{% for m in {t[0]} %}}{t[1]}{{% endfor %}}"),
        st.tuples(expressions, inner).map(lambda t: f"{{% set x = {t[0]} %}}{t[1]}"),
        inner.map(lambda b: f"{{% macro f(n) %}}{b}{{{{ f(n) }}}}{{% endmacro %}}{{{{ f(1) }}}}"),
    )


_leaves = st.one_of(
    expressions.map(lambda e: f"{{{{ {e} }}}}"),
    st.sampled_from(["text ", "<|im_start|>", "\n", "{{ raise_exception('no') }}", "{% break %}"]),
)
templates = st.recursive(_leaves, _block, max_leaves=8)


@given(source=templates)
def test_any_template_renders_or_fails_cleanly(source: str, renderer: TemplateRenderer) -> None:
    started = time.monotonic()
    outcome = _render(source, renderer)
    if isinstance(outcome, TemplateError):
        assert outcome.user_message
    else:
        assert all(isinstance(p, PromptPiece) and p.text for p in outcome)
        assert sum(len(p.text) for p in outcome) <= MAX_OUTPUT_CHARS
    assert time.monotonic() - started < 30  # the 2 s deadline plus starting a fresh child


@given(source=st.text(max_size=300))
def test_arbitrary_text_as_a_template(source: str, renderer: TemplateRenderer) -> None:
    outcome = _render(source, renderer)
    assert isinstance(outcome, TemplateError | list)


def _render(source: str, renderer: TemplateRenderer) -> list[PromptPiece] | TemplateError:
    """The pieces, or the TemplateError; any other exception fails the test."""
    try:
        return renderer.render(ChatTemplate(source=source), MESSAGES)
    except TemplateError as exc:
        return exc
