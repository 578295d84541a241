"""Chat templates render off the engine thread: a slow or hostile template never stalls a stream.

Each test runs a stream on raw text (no template) and, while it runs, a chat request whose
model template is slow (a wall-clock loop of about a second, within the 2 s render deadline) or
a bomb. The engine thread writes down every token; the stream must get tokens between the chat
request's arrival and the end of its render. Rendering on the engine thread, it got one at most.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import pytest

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.errors import Cancelled, TemplateError
from app.core.load_options import LoadOptions
from tests.fixtures.tiny_llama import CHATML_TEMPLATE, write_tiny_llama

GREEDY = Sampling(temperature=0.0)

# Loops until about a second has passed on the clock ("%S%f" is the time within the minute in
# microseconds), then renders ChatML: slow on any machine, yet well within the deadline.
SLOW_TEMPLATE = (
    "{% set ns = namespace(done=false) %}"
    "{% set t0 = strftime_now('%S%f') | int %}"
    "{% for a in range(2000) if not ns.done %}{% for b in range(1000) if not ns.done %}"
    "{% if ((strftime_now('%S%f') | int) - t0) % 60000000 > 1000000 %}"
    "{% set ns.done = true %}{% endif %}"
    "{% endfor %}{% endfor %}" + CHATML_TEMPLATE
)
# Far beyond the 2 s deadline: the render child is stopped and the request fails.
BOMB_TEMPLATE = (
    "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    + CHATML_TEMPLATE
)
# Another model's template: a system line ChatML doesn't have, so its prompts are longer.
PREAMBLE_TEMPLATE = "{{ 'You are a model with its own template.\\n' }}" + CHATML_TEMPLATE

STREAM = GenerationRequest(prompt="Hello world", max_tokens=200, sampling=GREEDY)
CHAT = GenerationRequest(
    messages=(ChatMessage(role="user", content="Hello"),), max_tokens=4, sampling=GREEDY
)


class Timeline:
    """Every token of every generation, plus marks the test puts in, in the order they happen."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def mark(self, what: str) -> None:
        with self._lock:
            self.events.append((what, 0))

    def generation_started(self, job_id, request, model_id, prompt_tokens, cached):  # type: ignore[no-untyped-def]
        with self._lock:
            self.events.append(("started", job_id))

    def generation_progressed(self, job_id, completion_tokens):  # type: ignore[no-untyped-def]
        with self._lock:
            self.events.append(("token", job_id))

    def generation_finished(self, job_id, result, error):  # type: ignore[no-untyped-def]
        with self._lock:
            self.events.append(("finished", job_id))

    def tokens_between(self, start: str, end: str) -> int:
        with self._lock:
            events = list(self.events)
        first = events.index((start, 0))
        last = next((i for i, e in enumerate(events) if e[0] == end and i > first), len(events))
        return sum(1 for what, _ in events[first:last] if what == "token")


def _model(tmp_path_factory: pytest.TempPathFactory, name: str, template: str) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("models") / name, chat_template=template)


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model(tmp_path_factory, "tiny-slow-template.gguf", SLOW_TEMPLATE)


@pytest.fixture(scope="module")
def bomb_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model(tmp_path_factory, "tiny-bomb-template.gguf", BOMB_TEMPLATE)


def _stream_beside(
    engine: Engine, model: Path, during: Callable[[], Future[Any]], until: str = "done"
) -> int:
    """Run a stream and start ``during`` once it has a token: the stream's tokens from then
    until ``until`` (the other job's end, or its generation's start)."""
    engine.load(LoadOptions(model_path=model, n_ctx=512, parallel=2)).result()
    timeline = Timeline()
    engine.add_observer(timeline)
    first_token = threading.Event()
    stream = engine.generate(STREAM, on_chunk=lambda _text: first_token.set())
    assert first_token.wait(30)
    timeline.mark("submitted")
    other = during()
    other.add_done_callback(lambda _f: timeline.mark("done"))
    wait([other], 30)  # its outcome is each test's to check
    result = stream.result(30)
    assert result.completion_tokens > 0
    return timeline.tokens_between("submitted", until)


def test_a_slow_chat_render_does_not_stall_a_running_stream(
    engine: Engine, slow_model: Path
) -> None:
    chat: list[Future[Any]] = []

    def generate() -> Future[Any]:
        chat.append(engine.generate(CHAT))
        return chat[0]

    # Until it starts: once rendered, it shares the steps with the stream anyway.
    tokens_meanwhile = _stream_beside(engine, slow_model, generate, until="started")
    assert tokens_meanwhile >= 3
    assert chat[0].result().completion_tokens > 0


def test_a_template_bomb_fails_its_request_only(engine: Engine, bomb_model: Path) -> None:
    chat: list[Future[Any]] = []

    def generate() -> Future[Any]:
        chat.append(engine.generate(CHAT))
        return chat[0]

    tokens_meanwhile = _stream_beside(engine, bomb_model, generate)
    assert tokens_meanwhile >= 3
    with pytest.raises(TemplateError):
        chat[0].result()
    assert engine.pending == 0


def test_counting_tokens_with_a_slow_template_does_not_stall_a_running_stream(
    engine: Engine, slow_model: Path
) -> None:
    counted: list[Future[Any]] = []

    def count() -> Future[Any]:
        counted.append(engine.count_tokens(CHAT))
        return counted[0]

    tokens_meanwhile = _stream_beside(engine, slow_model, count)
    assert tokens_meanwhile >= 3
    assert counted[0].result() == engine.count_tokens(CHAT).result(30)


def test_a_request_cancelled_while_rendering_is_rejected(engine: Engine, slow_model: Path) -> None:
    engine.load(LoadOptions(model_path=slow_model, n_ctx=512)).result()
    cancel = CancelToken()
    future = engine.generate(CHAT, cancel=cancel)
    cancel.cancel()
    with pytest.raises(Cancelled):
        future.result(30)
    assert engine.pending == 0


def test_a_load_between_render_and_admission_renders_again_with_the_new_template(
    engine: Engine, tiny_model: Path, tmp_path: Path
) -> None:
    other_model = write_tiny_llama(tmp_path / "tiny-preamble.gguf", chat_template=PREAMBLE_TEMPLATE)
    engine.load(LoadOptions(model_path=other_model, n_ctx=512, parallel=1)).result()
    on_other = engine.count_tokens(CHAT).result(30)
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=512, parallel=1)).result()
    on_chatml = engine.count_tokens(CHAT).result(30)
    assert on_other > on_chatml

    # Hold the engine thread inside the running stream's first chunk, so the chat request
    # below renders (with ChatML, the loaded template) before the queued load runs.
    release = threading.Event()
    entered = threading.Event()

    def hold(_text: str) -> None:
        entered.set()
        release.wait(30)

    stream = engine.generate(
        GenerationRequest(prompt="Hello", max_tokens=1, sampling=GREEDY), on_chunk=hold
    )
    assert entered.wait(30)
    load = engine.load(LoadOptions(model_path=other_model, n_ctx=512, parallel=1))
    chat = engine.generate(CHAT)
    release.set()
    stream.result(30)
    load.result(30)
    assert chat.result(30).prompt_tokens == on_other


def test_ready_jobs_pass_a_rendering_one_but_a_load_waits_for_it(
    engine: Engine, slow_model: Path
) -> None:
    # One slot: whichever generation starts first ends before the other starts.
    options = LoadOptions(model_path=slow_model, n_ctx=512, parallel=1)
    engine.load(options).result()
    timeline = Timeline()
    chat = engine.generate(CHAT)  # renders for about a second
    raw = engine.generate(GenerationRequest(prompt="Hello", max_tokens=2, sampling=GREEDY))
    load = engine.load(options)  # would change the template: waits for the chat job
    for future, name in ((chat, "chat"), (raw, "raw"), (load, "loaded")):
        future.add_done_callback(lambda _f, name=name: timeline.mark(name))
    wait([chat, raw, load], 30)
    assert chat.result().completion_tokens > 0
    assert raw.result().completion_tokens > 0
    load.result()
    assert [what for what, _ in timeline.events] == ["raw", "chat", "loaded"]
