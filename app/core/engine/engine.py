"""The engine: one thread owns the one loaded model and schedules every caller's jobs.

Generations run in the model's sequence slots (llama.cpp's parallel slots). Each step is one
``llama_decode`` over the next token of every running sequence plus, within the batch size,
chunks of prompts still being read: a new request starts as soon as a slot is free, and a long
prompt holds the running streams up by one chunk at most. Requests are admitted in arrival
order; beyond the slots a bounded queue waits (``EngineBusy`` when it is full). Token counts and
embeddings run between steps; loading and unloading wait until the running sequences end.

A chat template may take up to its 2 s deadline, so chat messages render on a small thread pool
as soon as a request arrives, never on the engine thread: the running streams keep stepping
meanwhile. The order is arrival order among ready jobs: a job whose render is still running
lets the jobs behind it go first, but holds back a load or unload queued behind it.

A job's ``CancelToken`` is checked before every step (and by llama.cpp's abort callback while a
prompt chunk is read), so a Stop button or a client that disconnects frees its slot at once.
"""

from __future__ import annotations

import codecs
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import psutil

from app.core.catalog.gguf_header import read_local_model
from app.core.engine.backend import LlamaBackend, Span, SpecialTokens
from app.core.engine.cancel import CancelToken
from app.core.engine.chat_template import (
    TRANSCRIPT_FALLBACK,
    ChatTemplate,
    PromptPiece,
    TemplateRenderer,
    probe_template,
)
from app.core.engine.fim import fim_prompt, reply_room, supports_fim
from app.core.engine.prompt import tokenize_pieces
from app.core.engine.request import GenerationRequest, Sampling
from app.core.engine.result import EmbeddingResult, FinishReason, GenerationResult, ModelInfo
from app.core.engine.stop import StopMatcher
from app.core.errors import (
    AppError,
    Cancelled,
    ContextOverflow,
    EngineBusy,
    ModelNotLoaded,
    WorkerLost,
)
from app.core.load_options import LoadOptions

log = logging.getLogger(__name__)

ChunkCallback = Callable[[str], None]


class TokenSampler(Protocol):
    """One request's sampler chain."""

    def sample(self, index: int) -> int: ...
    def close(self) -> None: ...


class Backend(Protocol):
    """What the engine needs of a loaded model (``LlamaBackend`` is the real one)."""

    @property
    def metadata(self) -> dict[str, str]: ...
    def n_ctx(self) -> int: ...
    def n_ctx_train(self) -> int: ...
    def n_params(self) -> int: ...
    def n_vocab(self) -> int: ...
    def n_slots(self) -> int: ...
    def n_batch(self) -> int: ...
    def special_tokens(self) -> SpecialTokens: ...
    def tokenize(self, text: str, *, special: bool) -> list[int]: ...
    def piece(self, token: int) -> bytes: ...
    def token_text(self, token: int) -> str: ...
    def is_control(self, token: int) -> bool: ...
    def is_end_of_generation(self, token: int) -> bool: ...
    def sampler(
        self, sampling: Sampling, grammar: str | None, recent: Sequence[int]
    ) -> TokenSampler: ...
    def decode(self, spans: Sequence[Span], should_abort: Callable[[], bool] | None) -> bool: ...
    def forget(self, seq: int, start: int) -> bool: ...
    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]: ...
    def close(self) -> None: ...


BackendFactory = Callable[[LoadOptions], Backend]


class GenerationObserver(Protocol):
    """Told about every generation (the usage ledger is one). Called on the engine thread."""

    def generation_started(
        self,
        job_id: int,
        request: GenerationRequest,
        model_id: str,
        prompt_tokens: int,
        cached_prompt_tokens: int,
    ) -> None: ...
    def generation_progressed(self, job_id: int, completion_tokens: int) -> None: ...
    def generation_finished(
        self, job_id: int, result: GenerationResult | None, error: BaseException | None
    ) -> None: ...


@dataclass(frozen=True)
class SlotUsage:
    """What the engine is doing right now (for the Server page and /health)."""

    active: int  # sequences being read or decoded
    slots: int  # sequence slots of the loaded model (0 when none is loaded)
    queued: int  # generations and embeddings waiting


# "generate" takes a slot; "between" (token counts, embeddings) runs between decode steps;
# "exclusive" (load, unload) waits until no sequence runs.
JobKind = Literal["generate", "between", "exclusive"]

# Put on the job queue when a chat render ends, so an idle engine thread wakes to admit its job.
Wake = Literal["wake"]


@dataclass(frozen=True)
class _Render:
    """A request's chat messages rendering off the engine thread with one model's template."""

    template: ChatTemplate
    pieces: Future[list[PromptPiece]]


@dataclass
class _Job:
    kind: JobKind
    future: Future[Any]
    run: Callable[[_Job], Any] = lambda _job: None
    request: GenerationRequest | None = None
    render: _Render | None = None  # set for chat messages once a model is loaded
    on_chunk: ChunkCallback = lambda _text: None
    cancel: CancelToken = field(default_factory=CancelToken)
    counts_toward_bound: bool = False
    submitted_at: float = field(default_factory=time.monotonic)


@dataclass
class _Loaded:
    backend: Backend
    info: ModelInfo
    template: ChatTemplate
    special: SpecialTokens


@dataclass
class _Slot:
    """One sequence of the KV cache: the tokens it holds, and the generation using it."""

    seq: int
    cached: list[int] = field(default_factory=list)
    generation: _Generation | None = None
    last_used: int = 0


class _Generation:
    """One request in a slot: its prompt read in chunks, then one token per step."""

    def __init__(
        self,
        job: _Job,
        job_id: int,
        loaded: _Loaded,
        prompt: _Prompt,
        sampler: TokenSampler,
        slot: _Slot,
        started: float,
    ) -> None:
        request = job.request
        assert request is not None
        self.job = job
        self.job_id = job_id
        self.request = request
        self._backend = loaded.backend
        self.prompt = prompt.tokens
        self.truncated = prompt.truncated
        self.sampler = sampler
        self.slot = slot
        self.started = started
        self.cached = len(slot.cached)  # prompt tokens reused from the slot's KV cache
        room = loaded.info.n_ctx - len(prompt.tokens)
        self.max_new = room if request.max_tokens is None else min(request.max_tokens, room)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stopper = StopMatcher(prompt.stops)
        self._line_deadline = request.line_deadline_s
        self._new_line = False
        self._show_control = request.show_control_tokens
        self._parts: list[str] = []
        # A chat reply starts at its first visible character (templates end in "Assistant:").
        self._strip_leading = request.messages is not None
        self.next_token: int | None = None  # sampled, not yet decoded
        self.completion_tokens = 0
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.finish: FinishReason | None = None
        self.max_concurrent = 1

    @property
    def reading(self) -> bool:
        """Still reading its prompt into the slot."""
        return len(self.slot.cached) < len(self.prompt)

    def accept(self, token: int) -> bool:
        """Take the token sampled for this sequence; False once the generation has finished."""
        now = time.monotonic()
        self.first_token_at = self.first_token_at or now
        self.last_token_at = now
        if self._backend.is_end_of_generation(token):
            self.finish = "stop"
            return False
        self.completion_tokens += 1
        if self._show_control and self._backend.is_control(token):
            piece = self._backend.token_text(token).encode("utf-8")
        else:
            piece = self._backend.piece(token)
        text = self._decoder.decode(piece)
        self._new_line = self._new_line or "\n" in text
        self._emit(self._stopper.feed(text))
        if self._stopper.hit is not None:
            self.finish = "stop"
        elif self.completion_tokens >= self.max_new or self._past_line_deadline(now):
            self.finish = "length"
        self.next_token = token if self.finish is None else None
        return self.finish is None

    def _past_line_deadline(self, now: float) -> bool:
        deadline, first = self._line_deadline, self.first_token_at
        return (
            deadline is not None
            and first is not None
            and self._new_line
            and (now - first >= deadline)
        )

    def close(self) -> str:
        self.sampler.close()
        if self._stopper.hit is None:
            self._emit(self._stopper.feed(self._decoder.decode(b"", final=True)))
            self._emit(self._stopper.flush())
        return "".join(self._parts)

    def result(self, model_id: str, text: str) -> GenerationResult:
        assert self.finish is not None
        first = self.first_token_at
        return GenerationResult(
            text=text,
            model_id=model_id,
            prompt_tokens=len(self.prompt),
            cached_prompt_tokens=self.cached,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish,
            time_to_first_token_s=None if first is None else first - self.started,
            prompt_s=(first or time.monotonic()) - self.started,
            decode_s=0.0 if first is None else (self.last_token_at or first) - first,
            queued_s=self.started - self.job.submitted_at,
            max_concurrent=self.max_concurrent,
            stop_sequence=self._stopper.hit,
            prompt_truncated=self.truncated,
        )

    def _emit(self, text: str) -> None:
        if self._strip_leading:
            text = text.lstrip()
            self._strip_leading = not text
        if text:
            self._parts.append(text)
            self.job.on_chunk(text)


@dataclass(frozen=True)
class _Prompt:
    tokens: list[int]
    stops: tuple[str, ...]
    truncated: bool = False  # part of a FIM prompt was left out to fit the context


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Engine:
    """Owns the one loaded model. Every public method queues a job and returns a Future."""

    def __init__(
        self,
        backend_factory: BackendFactory = LlamaBackend,
        max_pending: int = 16,
        observers: Sequence[GenerationObserver] = (),
        job_ids: Iterator[int] | None = None,
    ) -> None:
        self._backend_factory = backend_factory
        self._max_pending = max_pending
        self._observers = list(observers)
        self._loss_listeners: list[Callable[[WorkerLost], None]] = []
        self._jobs: queue.SimpleQueue[_Job | Wake | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        # Shared by the engines of one pool, so observers never see one id twice.
        self._job_ids = job_ids if job_ids is not None else itertools.count(1)
        self._steps = itertools.count(1)
        self._loaded: _Loaded | None = None  # written only on the engine thread
        self._slots: list[_Slot] = []
        self._running: list[_Generation] = []  # in admission order
        self._waiting: list[_Job] = []  # in arrival order
        self._usage = (0, 0)  # (active sequences, slots), published by the engine thread
        self._closed = False
        self._templates = TemplateRenderer()
        # Two workers match the renderer's two children: two arriving requests render at once.
        self._renders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine-prepare")
        self._thread = threading.Thread(target=self._serve, name="engine", daemon=True)
        self._thread.start()

    # -- queries (any thread) ------------------------------------------------------------------

    @property
    def model(self) -> ModelInfo | None:
        loaded = self._loaded
        return loaded.info if loaded else None

    @property
    def pending(self) -> int:
        """Generations and embeddings in the engine: running or waiting."""
        with self._pending_lock:
            return self._pending

    @property
    def slot_usage(self) -> SlotUsage:
        active, slots = self._usage
        # Everything counted in but not in a slot waits, including jobs not yet taken.
        return SlotUsage(active=active, slots=slots, queued=max(self.pending - active, 0))

    def add_observer(self, observer: GenerationObserver) -> None:
        self._observers.append(observer)

    def add_loss_listener(self, listener: Callable[[WorkerLost], None]) -> None:
        """``listener(error)`` runs on the engine thread after a lost worker unloaded the model
        (the model's owner learns it is gone; the error names the worker)."""
        self._loss_listeners.append(listener)

    # -- jobs ----------------------------------------------------------------------------------

    def load(self, options: LoadOptions) -> Future[ModelInfo]:
        return self._submit("exclusive", lambda _job: self._load(options))

    def unload(self) -> Future[None]:
        return self._submit("exclusive", lambda _job: self._unload())

    def count_tokens(self, request: GenerationRequest) -> Future[int]:
        """The prompt tokens a request would use (for context meters and checks)."""
        return self._submit(
            "between",
            lambda job: len(self._prompt(self._require_loaded(), request, job.render).tokens),
            request=request,
        )

    def generate(
        self,
        request: GenerationRequest,
        on_chunk: ChunkCallback = lambda _text: None,
        cancel: CancelToken | None = None,
    ) -> Future[GenerationResult]:
        """Queue a generation; raises ``EngineBusy`` at once when the queue is full."""
        self._reserve_slot()
        return self._submit(
            "generate",
            request=request,
            on_chunk=on_chunk,
            cancel=cancel,
            counts_toward_bound=True,
        )

    def embed(
        self, texts: Sequence[str], cancel: CancelToken | None = None
    ) -> Future[EmbeddingResult]:
        """Queue an embedding job (same bound as generations; it runs between decode steps)."""
        self._reserve_slot()
        return self._submit(
            "between",
            lambda _job: self._embed(list(texts)),
            cancel=cancel,
            counts_toward_bound=True,
        )

    def _reserve_slot(self) -> None:
        """Count a bounded job in, or raise ``EngineBusy`` once the queue beyond the slots is
        full."""
        with self._pending_lock:
            if self._pending >= self._max_pending + self._usage[1]:
                raise EngineBusy(self._pending)
            self._pending += 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel the running generations and everything queued, unload, join the thread."""
        if self._closed:
            return
        self._closed = True
        for generation in list(self._running):
            generation.job.cancel.cancel()
        self._jobs.put(None)
        self._thread.join(timeout_s)

    def _submit(
        self,
        kind: JobKind,
        run: Callable[[_Job], Any] = lambda _job: None,
        *,
        request: GenerationRequest | None = None,
        on_chunk: ChunkCallback = lambda _text: None,
        cancel: CancelToken | None = None,
        counts_toward_bound: bool = False,
    ) -> Future[Any]:
        if self._closed:
            if counts_toward_bound:
                self._release_count()
            raise AppError("the engine has shut down")
        future: Future[Any] = Future()
        job = _Job(
            kind=kind,
            future=future,
            run=run,
            request=request,
            on_chunk=on_chunk,
            cancel=cancel or CancelToken(),
            counts_toward_bound=counts_toward_bound,
        )
        loaded = self._loaded
        if loaded is not None and request is not None and request.messages is not None:
            job.render = self._start_render(loaded.template, request)
        self._jobs.put(job)
        return future

    def _start_render(self, template: ChatTemplate, request: GenerationRequest) -> _Render:
        """Render a request's messages on the render pool (any thread)."""
        messages = request.messages
        assert messages is not None
        tools = request.tools or None
        try:
            pieces = self._renders.submit(self._templates.render, template, messages, tools=tools)
        except RuntimeError:  # the pool has shut down: close() won the race
            pieces = Future[list[PromptPiece]]()
            pieces.set_exception(AppError("the engine has shut down"))
        pieces.add_done_callback(lambda _done: self._jobs.put("wake"))
        return _Render(template, pieces)

    # -- engine thread: the scheduler ----------------------------------------------------------

    def _serve(self) -> None:
        block = True
        while self._take_jobs(block):
            self._schedule()
            self._publish_usage()
            # Nothing runs right after scheduling: whatever still waits, waits on a chat render,
            # whose end puts a wake-up on the queue. Sleep there rather than spin.
            block = not self._running
            if self._running:
                self._step()
                self._publish_usage()
        for generation in list(self._running):
            generation.finish = "cancelled"
            self._finish(generation)
        while True:
            try:
                late = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(late, _Job):
                self._waiting.append(late)
        for job in self._waiting:
            self._reject(job, Cancelled("Homefire is shutting down"))
        self._waiting.clear()
        self._unload()
        self._templates.close()  # a render still running fails at once
        self._renders.shutdown(cancel_futures=True)
        self._publish_usage()

    def _take_jobs(self, block: bool) -> bool:
        """Move submitted jobs to the waiting list; False once the engine is closing."""
        try:
            job = self._jobs.get() if block else self._jobs.get_nowait()
            while True:
                if job is None:
                    return False
                if job != "wake":
                    self._waiting.append(job)
                job = self._jobs.get_nowait()
        except queue.Empty:
            return True

    def _schedule(self) -> None:
        """Start what can start, in arrival order among ready jobs: a generation that finds no
        free slot holds back the generations behind it; a job whose chat render is still
        running holds back only a load or unload behind it (which would change the template);
        a load or unload holds back everything behind it."""
        if self._closed:  # queued before close(): cancelled on the way out, never started
            return
        generation_blocked = False
        exclusive_blocked = False
        rendering = False
        i = 0
        while i < len(self._waiting):
            job = self._waiting[i]
            if job.cancel.cancelled or job.future.cancelled():
                del self._waiting[i]
                self._reject(job, Cancelled())
                continue
            if exclusive_blocked:
                i += 1
            elif not self._rendered(job):
                rendering = True
                i += 1
            elif job.kind == "between":
                del self._waiting[i]
                self._run(job)
            elif job.kind == "exclusive":
                if self._running or generation_blocked or rendering:
                    exclusive_blocked = True
                    i += 1
                else:
                    del self._waiting[i]
                    self._run(job)
            elif generation_blocked:
                i += 1
            else:
                slot = self._free_slot()
                if slot is None and self._loaded is not None:
                    generation_blocked = True
                    i += 1
                else:
                    del self._waiting[i]
                    self._admit(job)

    def _rendered(self, job: _Job) -> bool:
        """Whether a job's chat render is done with the loaded model's template. A render made
        with another template (a load came in between) starts again: a prompt is always the
        loaded model's."""
        loaded = self._loaded
        if job.request is None or job.request.messages is None or loaded is None:
            return True  # nothing to render (or admission fails for want of a model)
        if job.render is None or job.render.template != loaded.template:
            job.render = self._start_render(loaded.template, job.request)
        return job.render.pieces.done()

    def _free_slot(self) -> _Slot | None:
        return next((slot for slot in self._slots if slot.generation is None), None)

    def _run(self, job: _Job) -> None:
        try:
            if not job.future.set_running_or_notify_cancel():
                return
            try:
                result = job.run(job)
            except BaseException as exc:  # noqa: BLE001 - every failure ends up in the Future
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
        finally:
            self._release(job)

    def _reject(self, job: _Job, error: BaseException) -> None:
        self._release(job)
        if job.future.set_running_or_notify_cancel():
            job.future.set_exception(error)

    def _release(self, job: _Job) -> None:
        if job.counts_toward_bound:
            self._release_count()

    def _release_count(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def _publish_usage(self) -> None:
        self._usage = (len(self._running), len(self._slots))

    def _admit(self, job: _Job) -> None:
        """Give a generation the free slot whose cached tokens share the longest prefix with
        its prompt (an editor resends nearly the same prefix on every keystroke)."""
        if not job.future.set_running_or_notify_cancel():
            self._release(job)
            return
        started = time.monotonic()
        request = job.request
        assert request is not None
        try:
            loaded = self._require_loaded()
            built = self._prompt(loaded, request, job.render)
            prompt = built.tokens
            if len(prompt) >= loaded.info.n_ctx:
                raise ContextOverflow(len(prompt), loaded.info.n_ctx)
            sampler = loaded.backend.sampler(request.sampling, request.grammar, prompt)
        except BaseException as exc:  # noqa: BLE001 - the request's own failure
            job.future.set_exception(exc)
            self._release(job)
            if isinstance(exc, WorkerLost):
                self._lose_backend(exc)
            return
        free = [slot for slot in self._slots if slot.generation is None]
        slot = max(free, key=lambda s: (_common_prefix(s.cached, prompt), -s.last_used))
        # At least the prompt's last token is read again: its logits give the first token.
        keep = min(_common_prefix(slot.cached, prompt), len(prompt) - 1)
        if not loaded.backend.forget(slot.seq, keep):
            keep = 0
        del slot.cached[keep:]
        slot.last_used = next(self._steps)
        generation = _Generation(job, next(self._job_ids), loaded, built, sampler, slot, started)
        slot.generation = generation
        self._running.append(generation)
        self._notify_started(generation, loaded.info.model_id)

    def _step(self) -> None:
        """One ``llama_decode``: every running sequence's next token, then prompt chunks."""
        for generation in list(self._running):
            if generation.job.cancel.cancelled:
                generation.finish = "cancelled"
                self._finish(generation)
        if not self._running:
            return
        loaded = self._require_loaded()
        backend = loaded.backend
        budget = backend.n_batch()
        spans: list[Span] = []
        outputs: list[tuple[_Generation, int]] = []  # each with its logits' place in the batch
        readers: list[_Generation] = []
        size = 0
        for generation in self._running:
            if generation.next_token is not None:
                slot = generation.slot
                spans.append(Span(slot.seq, len(slot.cached), (generation.next_token,), True))
                outputs.append((generation, size))
                size += 1
        for generation in self._running:
            if size >= budget:
                break
            if generation.reading:
                slot = generation.slot
                start = len(slot.cached)
                chunk = generation.prompt[start : start + budget - size]
                last = start + len(chunk) == len(generation.prompt)
                spans.append(Span(slot.seq, start, chunk, last))
                readers.append(generation)
                size += len(chunk)
                if last:
                    outputs.append((generation, size - 1))
        should_abort = None
        if readers:

            def should_abort() -> bool:
                return any(g.job.cancel.cancelled for g in readers)

        by_seq = {generation.slot.seq: generation for generation in self._running}
        try:
            decoded = backend.decode(spans, should_abort)
        except WorkerLost as exc:
            self._lose_backend(exc)
            return
        except Exception as exc:  # a failed decode fails its sequences, not the engine
            log.exception("decode failed")
            for generation in list(self._running):
                self._forget_from(backend, generation.slot, 0)
                self._finish(generation, error=exc)
            return
        if not decoded:
            # Aborted for a cancelled prompt read: undo this step; the next one ends the reader.
            for span in spans:
                self._forget_from(backend, by_seq[span.seq].slot, span.start)
            return
        for span in spans:
            by_seq[span.seq].slot.cached.extend(span.tokens)
        for generation in by_seq.values():
            generation.max_concurrent = max(generation.max_concurrent, len(spans))
        for generation, index in outputs:
            if generation.max_new <= 0:  # asked to read the prompt only (an editor warming up)
                generation.finish = "length"
                self._finish(generation)
                continue
            try:
                going = generation.accept(generation.sampler.sample(index))
            except WorkerLost as exc:
                self._lose_backend(exc)
                return
            except Exception as exc:  # noqa: BLE001 - e.g. a chunk callback failed
                self._finish(generation, error=exc)
                continue
            if going:
                self._notify_progress(generation.job_id, generation.completion_tokens)
            else:
                self._finish(generation)

    def _lose_backend(self, error: WorkerLost) -> None:
        """A worker holding part of the model is gone: fail what runs, unload what is left, so
        the next load (without that worker) starts clean."""
        for generation in list(self._running):
            self._finish(generation, error=error)
        self._unload()
        for listener in list(self._loss_listeners):
            try:
                listener(error)
            except Exception:  # a broken listener must not stop the engine
                log.exception("a worker-loss listener failed")

    @staticmethod
    def _forget_from(backend: Backend, slot: _Slot, start: int) -> None:
        if not backend.forget(slot.seq, start):
            start = 0
        del slot.cached[start:]

    def _finish(self, generation: _Generation, error: BaseException | None = None) -> None:
        """End a generation: free its slot (its tokens stay cached), report, resolve."""
        self._running.remove(generation)
        generation.slot.generation = None
        job = generation.job
        result: GenerationResult | None = None
        if error is None:
            try:
                loaded = self._require_loaded()
                result = generation.result(loaded.info.model_id, generation.close())
            except Exception as exc:  # noqa: BLE001 - e.g. the last chunk's callback failed
                error = exc
        else:
            generation.sampler.close()
        self._notify_finished(generation.job_id, result, error)
        self._release(job)
        if result is not None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error or AppError("the generation failed"))

    # -- engine thread: jobs between steps -----------------------------------------------------

    def _require_loaded(self) -> _Loaded:
        if self._loaded is None:
            raise ModelNotLoaded("no model is loaded; load one first")
        return self._loaded

    def _load(self, options: LoadOptions) -> ModelInfo:
        # Our bounded reader checks the file before llama.cpp sees it, and before the loaded
        # model is given up: a hostile GGUF is an InvalidModelFile, not an abort() in C.
        read_local_model(options.model_path)
        self._unload()
        process = psutil.Process()
        rss_before = process.memory_info().rss
        started = time.monotonic()
        backend = self._backend_factory(options)
        load_s = time.monotonic() - started
        rss_growth = process.memory_info().rss - rss_before
        metadata = backend.metadata
        special = backend.special_tokens()
        template = self._template_for(backend, metadata, special)
        tools_ok, thinking = probe_template(self._templates, template)
        info = ModelInfo(
            model_id=options.model_id or options.model_path.stem,
            path=options.model_path,
            n_ctx=backend.n_ctx(),
            n_ctx_train=backend.n_ctx_train(),
            architecture=metadata.get("general.architecture"),
            n_params=backend.n_params(),
            size_bytes=options.model_path.stat().st_size,
            has_chat_template=template.origin == "gguf",
            template_source=template.origin,
            load_s=load_s,
            rss_growth_bytes=rss_growth,
            supports_tools=tools_ok,
            supports_fim=supports_fim(special),
            opens_thinking=thinking,
            n_gpu_layers=options.n_gpu_layers,
            n_vocab=backend.n_vocab(),
            parallel=backend.n_slots(),
            metadata=metadata,
        )
        self._loaded = _Loaded(backend=backend, info=info, template=template, special=special)
        self._slots = [_Slot(seq) for seq in range(backend.n_slots())]
        log.info("loaded %s (n_ctx %d) in %.2fs", info.model_id, info.n_ctx, load_s)
        return info

    @staticmethod
    def _template_for(
        backend: Backend, metadata: dict[str, str], special: SpecialTokens
    ) -> ChatTemplate:
        source = metadata.get("tokenizer.chat_template")
        if not source:
            return TRANSCRIPT_FALLBACK
        return ChatTemplate(
            source=source,
            bos_token=backend.token_text(special.bos) if special.bos is not None else "",
            eos_token=backend.token_text(special.eos) if special.eos is not None else "",
        )

    def _unload(self) -> None:
        loaded, self._loaded = self._loaded, None
        self._slots = []
        if loaded is not None:
            loaded.backend.close()

    @staticmethod
    def _prompt(loaded: _Loaded, request: GenerationRequest, render: _Render | None) -> _Prompt:
        """The prompt's tokens (chat messages from their finished render) and stop strings."""
        backend = loaded.backend
        special = loaded.special
        truncated = False
        if request.messages is not None:
            assert render is not None
            assert render.template == loaded.template  # _rendered() saw to it
            tokens = tokenize_pieces(backend, render.pieces.result())
            stops = (*request.stop, *loaded.template.stop)
        elif request.suffix is not None:
            n_ctx = loaded.info.n_ctx
            bos = int(special.add_bos and special.bos is not None)
            fim = fim_prompt(
                backend,
                special,
                request.prompt or "",
                request.suffix,
                request.context_files,
                budget=n_ctx - reply_room(n_ctx, request.max_tokens) - bos,
            )
            tokens, truncated = fim.tokens, fim.truncated
            stops = request.stop
        else:
            tokens = backend.tokenize(request.prompt or "", special=request.prompt_special_tokens)
            stops = request.stop
        bos_token = special.bos
        if special.add_bos and bos_token is not None and (not tokens or tokens[0] != bos_token):
            tokens.insert(0, bos_token)
        return _Prompt(tokens, stops, truncated)

    def _embed(self, texts: list[str]) -> EmbeddingResult:
        loaded = self._require_loaded()
        started = time.monotonic()
        vectors, tokens = loaded.backend.embed(texts)
        return EmbeddingResult(
            vectors=vectors,
            model_id=loaded.info.model_id,
            prompt_tokens=tokens,
            duration_s=time.monotonic() - started,
        )

    def _notify_started(self, generation: _Generation, model_id: str) -> None:
        for observer in self._observers:
            try:
                observer.generation_started(
                    generation.job_id,
                    generation.request,
                    model_id,
                    len(generation.prompt),
                    generation.cached,
                )
            except Exception:  # an observer never breaks a generation
                log.exception("generation observer failed")

    def _notify_progress(self, job_id: int, completion_tokens: int) -> None:
        for observer in self._observers:
            try:
                observer.generation_progressed(job_id, completion_tokens)
            except Exception:
                log.exception("generation observer failed")

    def _notify_finished(
        self, job_id: int, result: GenerationResult | None, error: BaseException | None
    ) -> None:
        for observer in self._observers:
            try:
                observer.generation_finished(job_id, result, error)
            except Exception:
                log.exception("generation observer failed")
