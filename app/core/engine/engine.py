"""The engine: one thread owns the one loaded model; every caller queues jobs in one FIFO.

Chat and the HTTP endpoint share the queue and nothing pre-empts a running generation. A job's
``CancelToken`` is checked between tokens (and by llama.cpp's abort callback during a long
prompt read), so a Stop button or a client that disconnects frees the engine at once.

The generation loop works on a ``_Generation`` object that advances one token per ``step()``:
a later scheduler can interleave several of them (llama.cpp's parallel slots) without changing
callers.
"""

from __future__ import annotations

import codecs
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil

from app.core.catalog.gguf_header import read_local_model
from app.core.engine.backend import LlamaBackend, SpecialTokens
from app.core.engine.cancel import CancelToken
from app.core.engine.chat_template import TRANSCRIPT_FALLBACK, ChatTemplate, TemplateRenderer
from app.core.engine.fim import fim_tokens, supports_fim
from app.core.engine.prompt import tokenize_pieces
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.engine.result import EmbeddingResult, FinishReason, GenerationResult, ModelInfo
from app.core.engine.stop import StopMatcher
from app.core.errors import (
    AppError,
    Cancelled,
    ContextOverflow,
    EngineBusy,
    ModelNotLoaded,
    TemplateError,
)
from app.core.load_options import LoadOptions

log = logging.getLogger(__name__)

ChunkCallback = Callable[[str], None]


class Backend(Protocol):
    """What the engine needs of a loaded model (``LlamaBackend`` is the real one)."""

    @property
    def metadata(self) -> dict[str, str]: ...
    def n_ctx(self) -> int: ...
    def n_ctx_train(self) -> int: ...
    def n_params(self) -> int: ...
    def n_vocab(self) -> int: ...
    def special_tokens(self) -> SpecialTokens: ...
    def tokenize(self, text: str, *, special: bool) -> list[int]: ...
    def piece(self, token: int) -> bytes: ...
    def token_text(self, token: int) -> str: ...
    def is_control(self, token: int) -> bool: ...
    def is_end_of_generation(self, token: int) -> bool: ...
    def cached_prefix(self, tokens: Sequence[int]) -> int: ...
    def token_stream(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        should_abort: Callable[[], bool],
        grammar: str | None = None,
    ) -> Iterator[int]: ...
    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]: ...
    def forget_cache(self) -> None: ...
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


@dataclass
class _Job:
    run: Callable[[], Any]
    future: Future[Any]
    cancel: CancelToken = field(default_factory=CancelToken)
    counts_toward_bound: bool = False
    submitted_at: float = field(default_factory=time.monotonic)


@dataclass
class _Loaded:
    backend: Backend
    info: ModelInfo
    template: ChatTemplate
    special: SpecialTokens


class _Generation:
    """One request's decode, advanced one token per ``step()``; not thread-safe."""

    def __init__(
        self,
        loaded: _Loaded,
        request: GenerationRequest,
        prompt: list[int],
        stops: Sequence[str],
        cancel: CancelToken,
        on_chunk: ChunkCallback,
    ) -> None:
        self._backend = loaded.backend
        self._cancel = cancel
        self._on_chunk = on_chunk
        self.prompt = prompt
        n_ctx = loaded.info.n_ctx
        room = n_ctx - len(prompt)
        self.max_new = room if request.max_tokens is None else min(request.max_tokens, room)
        self.cached = self._backend.cached_prefix(prompt)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stopper = StopMatcher(stops)
        self._tokens = self._backend.token_stream(
            prompt, request.sampling, should_abort=lambda: cancel.cancelled, grammar=request.grammar
        )
        self._show_control = request.show_control_tokens
        self._parts: list[str] = []
        # A chat reply starts at its first visible character (templates end in "Assistant:").
        self._strip_leading = request.messages is not None
        self.completion_tokens = 0
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.finish: FinishReason | None = None

    def step(self) -> bool:
        """Decode one token; False once the generation has finished."""
        if self._cancel.cancelled:
            self.finish = "cancelled"
            return False
        try:
            token = next(self._tokens)
        except StopIteration:
            self.finish = "stop"
            return False
        except RuntimeError:
            if not self._cancel.cancelled:
                raise
            # llama.cpp aborted the prompt read: its KV cache is half-written.
            self._backend.forget_cache()
            self.finish = "cancelled"
            return False
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
        self._emit(self._stopper.feed(self._decoder.decode(piece)))
        if self._stopper.hit is not None:
            self.finish = "stop"
        elif self.completion_tokens >= self.max_new:
            self.finish = "length"
        return self.finish is None

    def close(self) -> str:
        close = getattr(self._tokens, "close", None)
        if close is not None:
            close()
        if self._stopper.hit is None:
            self._emit(self._stopper.feed(self._decoder.decode(b"", final=True)))
            self._emit(self._stopper.flush())
        return "".join(self._parts)

    def _emit(self, text: str) -> None:
        if self._strip_leading:
            text = text.lstrip()
            self._strip_leading = not text
        if text:
            self._parts.append(text)
            self._on_chunk(text)


class Engine:
    """Owns the one loaded model. Every public method queues a job and returns a Future."""

    def __init__(
        self,
        backend_factory: BackendFactory = LlamaBackend,
        max_pending: int = 16,
        observers: Sequence[GenerationObserver] = (),
    ) -> None:
        self._backend_factory = backend_factory
        self._max_pending = max_pending
        self._observers = list(observers)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._job_ids = itertools.count(1)
        self._loaded: _Loaded | None = None  # written only on the engine thread
        self._current: _Job | None = None
        self._queued: list[_Job] = []
        self._closed = False
        self._templates = TemplateRenderer()
        self._thread = threading.Thread(target=self._serve, name="engine", daemon=True)
        self._thread.start()

    # -- queries (any thread) ------------------------------------------------------------------

    @property
    def model(self) -> ModelInfo | None:
        loaded = self._loaded
        return loaded.info if loaded else None

    @property
    def pending(self) -> int:
        with self._pending_lock:
            return self._pending

    def add_observer(self, observer: GenerationObserver) -> None:
        self._observers.append(observer)

    # -- jobs ----------------------------------------------------------------------------------

    def load(self, options: LoadOptions) -> Future[ModelInfo]:
        return self._submit(lambda job: self._load(options))

    def unload(self) -> Future[None]:
        return self._submit(lambda job: self._unload())

    def count_tokens(self, request: GenerationRequest) -> Future[int]:
        """The prompt tokens a request would use (for context meters and checks)."""
        return self._submit(lambda job: len(self._prompt(self._require_loaded(), request)[0]))

    def generate(
        self,
        request: GenerationRequest,
        on_chunk: ChunkCallback = lambda _text: None,
        cancel: CancelToken | None = None,
    ) -> Future[GenerationResult]:
        """Queue a generation; raises ``EngineBusy`` at once when the queue is full."""
        token = cancel or CancelToken()
        self._reserve_slot()
        return self._submit(
            lambda job: self._generate(job, request, on_chunk),
            cancel=token,
            counts_toward_bound=True,
        )

    def embed(
        self, texts: Sequence[str], cancel: CancelToken | None = None
    ) -> Future[EmbeddingResult]:
        """Queue an embedding job (same queue, same bound as generations)."""
        self._reserve_slot()
        return self._submit(
            lambda job: self._embed(list(texts)), cancel=cancel, counts_toward_bound=True
        )

    def _reserve_slot(self) -> None:
        """Count a bounded job in, or raise ``EngineBusy`` at once when the queue is full."""
        with self._pending_lock:
            if self._pending >= self._max_pending:
                raise EngineBusy(self._pending)
            self._pending += 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel the running job and everything queued, unload, and join the thread."""
        if self._closed:
            return
        self._closed = True
        current = self._current
        if current is not None:
            current.cancel.cancel()
        self._jobs.put(None)
        self._thread.join(timeout_s)

    # -- engine thread -------------------------------------------------------------------------

    def _submit(
        self,
        work: Callable[[_Job], Any],
        cancel: CancelToken | None = None,
        counts_toward_bound: bool = False,
    ) -> Future[Any]:
        if self._closed:
            raise AppError("the engine has shut down")
        future: Future[Any] = Future()
        job = _Job(
            run=lambda: None,
            future=future,
            cancel=cancel or CancelToken(),
            counts_toward_bound=counts_toward_bound,
        )
        job.run = lambda: work(job)
        self._jobs.put(job)
        return future

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            self._run(job)
        self._drain()
        self._unload()
        self._templates.close()

    def _drain(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self._release(job)
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(Cancelled("Homefire is shutting down"))

    def _run(self, job: _Job) -> None:
        try:
            if not job.future.set_running_or_notify_cancel():
                return
            if job.cancel.cancelled:
                job.future.set_exception(Cancelled())
                return
            if self._closed:  # queued before close(): cancelled, not run to the end
                job.future.set_exception(Cancelled("Homefire is shutting down"))
                return
            self._current = job
            try:
                result = job.run()
            except BaseException as exc:  # noqa: BLE001 - every failure ends up in the Future
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
        finally:
            self._current = None
            self._release(job)

    def _release(self, job: _Job) -> None:
        if job.counts_toward_bound:
            with self._pending_lock:
                self._pending -= 1

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
        tools_ok, thinking = _probe_template(self._templates, template)
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
            metadata=metadata,
        )
        self._loaded = _Loaded(backend=backend, info=info, template=template, special=special)
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
        if loaded is not None:
            loaded.backend.close()

    def _prompt(
        self, loaded: _Loaded, request: GenerationRequest
    ) -> tuple[list[int], tuple[str, ...]]:
        backend = loaded.backend
        if request.messages is not None:
            pieces = self._templates.render(
                loaded.template, request.messages, tools=request.tools or None
            )
            tokens = tokenize_pieces(backend, pieces)
            stops = (*request.stop, *loaded.template.stop)
        elif request.suffix is not None:
            tokens = fim_tokens(backend, loaded.special, request.prompt or "", request.suffix)
            stops = request.stop
        else:
            tokens = backend.tokenize(request.prompt or "", special=request.prompt_special_tokens)
            stops = request.stop
        bos = loaded.special.bos
        if loaded.special.add_bos and bos is not None and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens, stops

    def _generate(
        self, job: _Job, request: GenerationRequest, on_chunk: ChunkCallback
    ) -> GenerationResult:
        started = time.monotonic()
        loaded = self._require_loaded()
        prompt, stops = self._prompt(loaded, request)
        if len(prompt) >= loaded.info.n_ctx:
            raise ContextOverflow(len(prompt), loaded.info.n_ctx)
        job_id = next(self._job_ids)
        generation = _Generation(loaded, request, prompt, stops, job.cancel, on_chunk)
        self._notify_started(job_id, request, loaded.info.model_id, generation)
        error: BaseException | None = None
        result: GenerationResult | None = None
        try:
            while generation.step():
                self._notify_progress(job_id, generation.completion_tokens)
            text = generation.close()
            assert generation.finish is not None
            first = generation.first_token_at
            result = GenerationResult(
                text=text,
                model_id=loaded.info.model_id,
                prompt_tokens=len(prompt),
                cached_prompt_tokens=generation.cached,
                completion_tokens=generation.completion_tokens,
                finish_reason=generation.finish,
                time_to_first_token_s=None if first is None else first - started,
                prompt_s=(first or time.monotonic()) - started,
                decode_s=0.0 if first is None else (generation.last_token_at or first) - first,
                queued_s=started - job.submitted_at,
            )
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._notify_finished(job_id, result, error)

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

    def _notify_started(
        self, job_id: int, request: GenerationRequest, model_id: str, generation: _Generation
    ) -> None:
        for observer in self._observers:
            try:
                observer.generation_started(
                    job_id, request, model_id, len(generation.prompt), generation.cached
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


_PROBE_TOOL = "homefire_probe_tool"


def _probe_template(templates: TemplateRenderer, template: ChatTemplate) -> tuple[bool, bool]:
    """(renders tools, generation prompt opens a <think> block), from two test renders."""
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
