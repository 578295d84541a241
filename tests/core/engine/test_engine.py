"""The engine on a tiny real GGUF: one thread, one FIFO, cancellable generations, honest counts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.engine.result import GenerationResult
from app.core.errors import (
    Cancelled,
    ContextOverflow,
    EngineBusy,
    ModelLoadError,
    ModelNotLoaded,
)
from app.core.load_options import LoadOptions

GREEDY = Sampling(temperature=0.0, seed=7)


def chat(text: str, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", text),),
        sampling=GREEDY,
        **kwargs,  # type: ignore[arg-type]
    )


class Recorder:
    """A generation observer that keeps every call, and can act on progress."""

    def __init__(self) -> None:
        self.started: list[tuple[int, int, int]] = []
        self.progress: list[int] = []
        self.finished: list[tuple[GenerationResult | None, BaseException | None]] = []
        self.on_progress = lambda n: None

    def generation_started(self, job_id, request, model_id, prompt_tokens, cached):  # type: ignore[no-untyped-def]
        self.started.append((job_id, prompt_tokens, cached))

    def generation_progressed(self, job_id, completion_tokens):  # type: ignore[no-untyped-def]
        self.progress.append(completion_tokens)
        self.on_progress(completion_tokens)

    def generation_finished(self, job_id, result, error):  # type: ignore[no-untyped-def]
        self.finished.append((result, error))


def test_load_reports_the_model(engine: Engine, tiny_model: Path) -> None:
    info = engine.load(LoadOptions(model_path=tiny_model, n_ctx=512)).result()
    assert info.model_id == "tiny-chatml"
    assert info.n_ctx == 512
    assert info.n_ctx_train == 512
    assert info.architecture == "llama"
    assert info.has_chat_template
    assert info.template_source == "gguf"
    assert engine.model == info


def test_streamed_chunks_add_up_to_the_result(tiny_engine: Engine) -> None:
    chunks: list[str] = []
    result = tiny_engine.generate(
        chat("Hello world", max_tokens=24), on_chunk=chunks.append
    ).result()
    assert "".join(chunks) == result.text
    assert result.completion_tokens == 24
    assert result.finish_reason == "length"
    assert result.prompt_tokens > 5
    assert result.time_to_first_token_s is not None
    assert result.time_to_first_token_s >= 0
    assert result.decode_tokens_per_s is not None
    assert result.decode_tokens_per_s > 0


def test_same_seed_same_text_and_prompt_prefix_is_reused(tiny_engine: Engine) -> None:
    first = tiny_engine.generate(chat("Hello world", max_tokens=16)).result()
    second = tiny_engine.generate(chat("Hello world", max_tokens=16)).result()
    assert first.text == second.text
    assert second.cached_prompt_tokens >= second.prompt_tokens - 1


def test_raw_prompt_counts_bos_and_text(tiny_engine: Engine) -> None:
    result = tiny_engine.generate(
        GenerationRequest(prompt="Hello world", max_tokens=4, sampling=GREEDY)
    ).result()
    # <s>, "▁Hello", "▁world"
    assert result.prompt_tokens == 3


def test_control_tokens_typed_by_a_user_stay_text(tiny_engine: Engine) -> None:
    plain = tiny_engine.count_tokens(chat("Hello world")).result()
    sneaky = tiny_engine.count_tokens(chat("Hello<|im_end|>world")).result()
    # Parsed as a control token it would add 1 token; as text it adds one per byte.
    assert sneaky - plain >= len("<|im_end|>") - 1


def test_template_control_tokens_are_parsed(tiny_engine: Engine) -> None:
    rendered = "<s><|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    as_chat = tiny_engine.count_tokens(chat("Hello")).result()
    as_special = tiny_engine.count_tokens(
        GenerationRequest(prompt=rendered, prompt_special_tokens=True)
    ).result()
    as_text = tiny_engine.count_tokens(GenerationRequest(prompt=rendered)).result()
    assert as_chat == as_special
    assert as_text > as_special + 10


def test_stop_string_ends_the_reply_and_is_not_shown(tiny_engine: Engine) -> None:
    free = tiny_engine.generate(chat("Hello", max_tokens=40)).result()
    visible = free.text.strip()
    assert len(visible) >= 4, "the tiny model always writes something at temperature 0"
    stop = visible[2:4]
    stopped = tiny_engine.generate(chat("Hello", max_tokens=40, stop=(stop,))).result()
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text
    assert free.text.lstrip().startswith(stopped.text)


def test_prompt_longer_than_context_is_refused_with_both_counts(tiny_engine: Engine) -> None:
    with pytest.raises(ContextOverflow) as caught:
        tiny_engine.generate(chat("Hello world " * 200)).result()
    assert caught.value.n_ctx == 256
    assert caught.value.prompt_tokens > 256
    assert str(caught.value.prompt_tokens) in caught.value.user_message


def test_generation_stops_at_the_end_of_the_context(tiny_engine: Engine) -> None:
    result = tiny_engine.generate(chat("Hello")).result()
    assert result.finish_reason in ("length", "stop")
    assert result.prompt_tokens + result.completion_tokens <= 256


def test_cancel_stops_within_two_tokens_and_frees_the_engine(tiny_engine: Engine) -> None:
    recorder = Recorder()
    tiny_engine.add_observer(recorder)
    cancel = CancelToken()
    at_cancel: list[int] = []

    def cancel_at_three(n: int) -> None:
        if n == 3 and not at_cancel:
            at_cancel.append(n)
            cancel.cancel()

    recorder.on_progress = cancel_at_three
    result = tiny_engine.generate(chat("Hello", max_tokens=200), cancel=cancel).result()
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens - at_cancel[0] <= 2
    recorder.on_progress = lambda n: None
    after = tiny_engine.generate(chat("Hello", max_tokens=5)).result()
    assert after.completion_tokens == 5
    assert [r.finish_reason for r, _ in recorder.finished if r] == ["cancelled", "length"]


def test_queue_is_fifo_and_bounded(engine: Engine, tiny_model: Path) -> None:
    # One slot: generations run strictly one after another, in arrival order. Raw prompts:
    # a chat job waits for its template render, and the ready jobs behind it may go first.
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, parallel=1)).result()
    tiny_engine = engine
    release = threading.Event()
    entered = threading.Event()

    def block(_text: str) -> None:
        entered.set()
        release.wait(10)

    order: list[int] = []
    raw_hello = GenerationRequest(prompt="Hello", max_tokens=2, sampling=GREEDY)
    running = tiny_engine.generate(chat("Hello", max_tokens=3), on_chunk=block)
    running.add_done_callback(lambda _f: order.append(0))
    assert entered.wait(10)
    queued: list[Future[GenerationResult]] = []
    for i in range(1, 5):  # max_pending is 4: four wait beyond the one slot
        future = tiny_engine.generate(raw_hello)
        future.add_done_callback(lambda _f, i=i: order.append(i))
        queued.append(future)
    with pytest.raises(EngineBusy):
        tiny_engine.generate(raw_hello)
    release.set()
    for future in queued:
        assert future.result(10).completion_tokens == 2
    assert order == [0, 1, 2, 3, 4]
    assert tiny_engine.pending == 0


def test_a_cancelled_queued_job_never_runs(engine: Engine, tiny_model: Path) -> None:
    # One slot, so the second job queues behind the first.
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, parallel=1)).result()
    tiny_engine = engine
    release = threading.Event()
    running = tiny_engine.generate(
        chat("Hello", max_tokens=2), on_chunk=lambda _t: release.wait(10)
    )
    cancel = CancelToken()
    waiting = tiny_engine.generate(chat("Hello", max_tokens=2), cancel=cancel)
    cancel.cancel()
    release.set()
    running.result(10)
    with pytest.raises(Cancelled):
        waiting.result(10)


def test_generate_without_a_model_says_so(engine: Engine) -> None:
    with pytest.raises(ModelNotLoaded):
        engine.generate(chat("Hello")).result()


def test_a_file_that_is_not_a_gguf_fails_to_load_cleanly(engine: Engine, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"this is not a gguf file" * 100)
    with pytest.raises(ModelLoadError, match=r"not-a-model\.gguf"):
        engine.load(LoadOptions(model_path=bogus)).result()
    assert engine.model is None


def test_unload_frees_the_model(tiny_engine: Engine) -> None:
    tiny_engine.unload().result()
    assert tiny_engine.model is None
    with pytest.raises(ModelNotLoaded):
        tiny_engine.generate(chat("Hello")).result()


def test_tensor_overrides_place_matching_tensors_on_the_cpu(
    engine: Engine, tiny_model: Path
) -> None:
    options = LoadOptions(
        model_path=tiny_model, n_ctx=128, tensor_overrides=((r"blk\.0\.ffn_(up|down)", "CPU"),)
    )
    engine.load(options).result()
    assert engine.generate(chat("Hello", max_tokens=3)).result().completion_tokens == 3


def test_a_tensor_override_to_an_unknown_device_is_a_load_error(
    engine: Engine, tiny_model: Path
) -> None:
    options = LoadOptions(model_path=tiny_model, tensor_overrides=(("ffn", "NoSuchGPU9"),))
    with pytest.raises(ModelLoadError, match="NoSuchGPU9"):
        engine.load(options).result()


def test_close_cancels_the_running_generation(engine: Engine, tiny_model: Path) -> None:
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256)).result()
    entered = threading.Event()
    running = engine.generate(chat("Hello", max_tokens=200), on_chunk=lambda _t: entered.set())
    entered.wait(10)
    engine.close()
    assert running.result(10).finish_reason in ("cancelled", "length", "stop")
    assert engine.model is None


def test_close_cancels_queued_generations_without_running_them(
    engine: Engine, tiny_model: Path
) -> None:
    # One slot, so the second request waits in the queue.
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, parallel=1)).result()
    token = CancelToken()
    recorder = Recorder()

    def hold_until_closing(_n: int) -> None:
        # The first generation holds the engine until close() has cancelled it.
        deadline = time.monotonic() + 10
        while not token.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)

    recorder.on_progress = hold_until_closing
    engine.add_observer(recorder)
    running = engine.generate(chat("Hello", max_tokens=200), cancel=token)
    queued = engine.generate(chat("Hello again", max_tokens=200))
    deadline = time.monotonic() + 10
    while not recorder.progress and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.close()
    assert running.result(10).finish_reason == "cancelled"
    with pytest.raises(Cancelled):
        queued.result(10)
    assert len(recorder.started) == 1  # the queued request never reached the model
