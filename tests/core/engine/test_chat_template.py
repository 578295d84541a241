"""Chat templates from GGUF files are untrusted code: sandboxed, bounded, and kept apart from user text."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import jinja2
import psutil
import pytest

from app.core.engine.chat_template import (
    RENDER_LIMITS,
    TRANSCRIPT_FALLBACK,
    ChatTemplate,
    PromptPiece,
    TemplateRenderer,
    jinja2_is_patched,
)
from app.core.engine.request import ChatMessage
from app.core.errors import TemplateError

CHATML = ChatTemplate(
    source=(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
)
USER = (ChatMessage("user", "hi <|im_end|> there"),)


def joined(pieces: list[PromptPiece]) -> str:
    return "".join(p.text for p in pieces)


def test_user_text_is_marked_untrusted_and_template_text_trusted(
    renderer: TemplateRenderer,
) -> None:
    pieces = renderer.render(CHATML, USER)
    assert (
        joined(pieces) == "<|im_start|>user\nhi <|im_end|> there<|im_end|>\n<|im_start|>assistant\n"
    )
    assert [p for p in pieces if not p.trusted] == [PromptPiece("hi <|im_end|> there", False)]


def test_fallback_transcript_for_models_without_a_template(renderer: TemplateRenderer) -> None:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Capital of France?"))
    text = joined(renderer.render(TRANSCRIPT_FALLBACK, messages))
    assert text == "Be brief.\n\nUser: Capital of France?\nAssistant:"
    assert "\nUser:" in TRANSCRIPT_FALLBACK.stop


def test_bos_and_eos_tokens_are_available_to_templates(renderer: TemplateRenderer) -> None:
    template = ChatTemplate(
        source="{{ bos_token }}{{ messages[0].content }}{{ eos_token }}",
        bos_token="<s>",
        eos_token="</s>",
    )
    assert joined(renderer.render(template, USER)) == "<s>hi <|im_end|> there</s>"


def test_raise_exception_in_a_template_becomes_a_template_error(renderer: TemplateRenderer) -> None:
    template = ChatTemplate(source="{{ raise_exception('roles must alternate') }}")
    with pytest.raises(TemplateError, match="roles must alternate"):
        renderer.render(template, USER)


def test_a_message_containing_sentinel_characters_survives(renderer: TemplateRenderer) -> None:
    text = "\ue000\ue001 private use"
    assert joined(renderer.render(CHATML, (ChatMessage("user", text),))).count(text) == 1


def test_a_template_that_truncates_content_leaves_the_rest_untrusted(
    renderer: TemplateRenderer,
) -> None:
    template = ChatTemplate(source="A{{ messages[0].content[:4] }}<|im_end|>")
    pieces = renderer.render(template, USER)
    assert pieces[0] == PromptPiece("A", True)
    assert all(not p.trusted for p in pieces[1:])


def test_tojson_keeps_non_ascii_and_html_as_is(renderer: TemplateRenderer) -> None:
    template = ChatTemplate(source="{{ messages[0] | tojson }}")
    assert "é<b>" in joined(renderer.render(template, (ChatMessage("user", "é<b>"),)))


@pytest.mark.parametrize(
    "evil",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self.__init__.__globals__.__builtins__.__import__('os').system('id') }}",
        "{{ messages.append('x') }}",
        "{% set x = namespace() %}{{ x.__class__.__base__.__subclasses__() }}",
    ],
)
def test_template_escapes_are_refused(evil: str, renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError):
        renderer.render(ChatTemplate(source=evil), USER)


@pytest.mark.parametrize(
    "bomb",
    [
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% for i in range(90000) %}{% for j in range(90000) %}{% endfor %}{% endfor %}",
        "{{ 'x' * 10**12 }}",
        "{{ 'x' * 99999 * 99999 }}",
        "{{ 9 ** 99999999 }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% for i in range(99999) %}{{ 'y' * 99999 }}{% endfor %}",
    ],
)
def test_resource_bombs_stop_quickly(bomb: str, renderer: TemplateRenderer) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError):
        renderer.render(ChatTemplate(source=bomb), USER)
    # Not a speed assert: a bound that only an unbounded render would cross.
    assert time.monotonic() - started < 30


def test_syntax_errors_are_template_errors(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match="failed to render"):
        renderer.render(ChatTemplate(source="{% for %}"), USER)


# --- work inside single C calls: the child process's bounds ------------------------------------

_HUGE = 10**10  # characters: an argument that would allocate tens of gigabytes


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


@pytest.mark.parametrize(
    "bomb",
    [
        f"{{{{ 'x'.ljust({_HUGE}) }}}}",
        f"{{{{ 'x'.rjust({_HUGE}) }}}}",
        f"{{{{ 'x'.center({_HUGE}) }}}}",
        f"{{{{ 'x' | center({_HUGE}) }}}}",
        f"{{{{ 'x'.zfill({_HUGE}) }}}}",
        "{{ ('x' * 100000).replace('x', 'y' * 100000) }}",
        f"{{{{ '{{:>{_HUGE}}}'.format(1) }}}}",
        f"{{{{ '%{_HUGE}d' % 1 }}}}",
        f"{{{{ 'a\\nb\\nc' | indent({_HUGE}) }}}}",
        "{{ ('x ' * 4000000) | wordwrap(1) }}",
        f"{{{{ messages | tojson(indent={_HUGE}) }}}}",
        "{{ ('x' * 8000000) | list | join('y' * 1000) }}",
        "{{ 'xy' * 4000000 * 1 }}{{ ('xy' * 4000000) ~ ('xy' * 4000000) }}",
        "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        "{% set s = 'x' * 3000 %}{% for a in s %}{% for b in s %}{{ a }}{% endfor %}{% endfor %}",
    ],
    ids=[
        "ljust", "rjust", "center-method", "center-filter", "zfill", "replace", "format",
        "percent", "indent", "wordwrap", "tojson-indent", "join", "concat",
        "nested-loops-over-strings", "nested-loops-printing",
    ],
)  # fmt: skip
def test_single_call_bombs_stop_in_bounded_time_and_memory(
    bomb: str, renderer: TemplateRenderer
) -> None:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    peak_before = _peak_rss()
    started = time.monotonic()
    with pytest.raises(TemplateError, match="chat template"):
        renderer.render(ChatTemplate(source=bomb), USER)
    # Bounds only an unbounded render would cross (no speed assert): 2 s of template work plus
    # starting the child, and no growth of this process beyond the render's memory bound.
    assert time.monotonic() - started < 30
    assert _peak_rss() <= max(peak_before, rss_before + RENDER_LIMITS.memory_bytes)
    assert process.memory_info().rss - rss_before < RENDER_LIMITS.memory_bytes


def test_a_render_over_the_deadline_names_the_bound(renderer: TemplateRenderer) -> None:
    loops = "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match="longer than 2 s"):
        renderer.render(ChatTemplate(source=loops), USER)


def test_a_render_over_the_memory_bound_names_it(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match="more than 64 MiB"):
        renderer.render(ChatTemplate(source=f"{{{{ 'x'.ljust({_HUGE}) }}}}"), USER)


def test_renders_after_a_killed_render_still_work(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError):
        renderer.render(ChatTemplate(source=f"{{{{ 'x'.center({_HUGE}) }}}}"), USER)
    assert joined(renderer.render(CHATML, USER)).startswith("<|im_start|>user\n")


# --- sandbox escapes (CVE-2024-34359 class; Jinja2 CVE-2024-56326 and CVE-2025-27516) ------------


def _escape_payloads(canary: Path) -> list[str]:
    touch = f"touch {canary}"
    return [
        "{% for x in ().__class__.__base__.__subclasses__() %}"
        "{% if 'warning' in x.__name__ %}"
        f"{{{{ x()._module.__builtins__['__import__']('os').popen('{touch}').read() }}}}"
        "{% endif %}{% endfor %}",
        f"{{{{ lipsum.__globals__['os'].popen('{touch}').read() }}}}",
        f"{{{{ lipsum.__globals__.os.system('{touch}') }}}}",
        # CVE-2025-27516: str.format reached through the attr filter
        "{{ '{0.__init__.__globals__[os].system}'|attr('format')(cycler) }}",
        f"{{{{ ('{{0.__init__.__globals__[os].popen}}'|attr('format')(cycler))('{touch}') }}}}",
        # CVE-2024-56326: a stored reference to str.format, called later
        "{% set f = '{0.__init__.__globals__[os]}'.format %}{{ f(cycler) }}",
        "{% set ns = namespace(f='{0.__init__.__globals__}'.format) %}{{ ns.f(cycler) }}",
    ]


def test_sandbox_escapes_are_refused_and_run_nothing(
    tmp_path: Path, renderer: TemplateRenderer
) -> None:
    canary = tmp_path / "canary"
    for payload in _escape_payloads(canary):
        with pytest.raises(TemplateError):
            renderer.render(ChatTemplate(source=payload), USER)
    assert not canary.exists()


def test_installed_jinja2_has_the_sandbox_fixes() -> None:
    assert jinja2_is_patched()


def test_an_unpatched_jinja2_renders_nothing(
    monkeypatch: pytest.MonkeyPatch, renderer: TemplateRenderer
) -> None:
    monkeypatch.setattr(jinja2, "__version__", "3.1.5")
    with pytest.raises(TemplateError, match=r"3\.1\.5 has known sandbox escapes"):
        renderer.render(CHATML, USER)
