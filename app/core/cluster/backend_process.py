"""A model split onto workers, held by a child process the engine talks to over a pipe.

ggml's RPC client aborts its process when a worker's connection is lost mid-compute, and waits
without end on a worker that stops answering. So the model that uses workers lives in a child:
``ProcessBackend`` is the engine's ``Backend`` on this side of a pipe, and every wait on the
child has a deadline. A child that dies or misses a deadline is killed; the call that was
waiting raises ``WorkerLost`` naming the workers that no longer answer, every later call raises
it too, and the engine unloads the model. Homefire itself keeps running.

Vocabulary facts (pieces, end-of-generation, control tokens) are cached on this side, so a decode
step costs a round trip for the decode and one per sampled token.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import multiprocessing
import os
import signal
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from app.core.cluster.split import LayerSplit
from app.core.cluster.worker import WorkerAddress, probe_worker
from app.core.engine.backend import LlamaBackend, Span, SpecialTokens
from app.core.engine.request import Sampling
from app.core.errors import AppError, WorkerLost
from app.core.load_options import LoadOptions

log = logging.getLogger(__name__)

_POLL_S = 0.02  # how often a wait looks at the caller's abort check
_CLOSE_S = 10.0  # an orderly unload; then the child is killed
_LOST_PROBE_S = 2.0  # to name the workers that stopped answering


@dataclass(frozen=True)
class Deadlines:
    """How long each wait on the child may take (generous: a slow link, a big prompt chunk)."""

    call_s: float = 120.0
    # A load sends the workers their layers: allowed call_s plus the model at this rate.
    slowest_link_bytes_per_s: float = 50e6

    def load_s(self, model_bytes: int) -> float:
        return self.call_s + model_bytes / self.slowest_link_bytes_per_s


@dataclass(frozen=True)
class _Facts:
    metadata: dict[str, str]
    n_ctx: int
    n_ctx_train: int
    n_params: int
    n_vocab: int
    n_slots: int
    n_batch: int
    special: SpecialTokens


class _ProcessGone(Exception):
    """The child died, or missed its deadline and was killed."""


class ProcessBackend:
    """A ``LlamaBackend`` with ``workers`` as devices, in a child process. The engine thread
    alone calls it, one call at a time."""

    def __init__(
        self,
        options: LoadOptions,
        workers: Sequence[WorkerAddress],
        split: LayerSplit,
        deadlines: Deadlines,
    ) -> None:
        self._workers = tuple(workers)
        self._deadlines = deadlines
        self._lost: WorkerLost | None = None
        self._pieces: dict[tuple[int, bool], bytes | str] = {}
        self._flags: dict[tuple[str, int], bool] = {}
        context = multiprocessing.get_context("forkserver")
        self._conn, child_end = context.Pipe()
        self._abort = context.RawValue("b", 0)
        self._process = context.Process(
            target=_child_main,
            args=(child_end, self._abort, options, [w.endpoint for w in workers], split),
            name="homefire-cluster",
            daemon=True,
        )
        try:
            self._process.start()
        except OSError as exc:
            self._conn.close()
            raise AppError(f"could not start the process that holds the model: {exc}") from exc
        finally:
            child_end.close()
        try:
            load_s = deadlines.load_s(options.model_path.stat().st_size)
            self._facts: _Facts = self._wait(load_s, "loading the model")
        except BaseException:
            self._stop()
            raise

    # -- facts ---------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._facts.metadata)

    def n_ctx(self) -> int:
        return self._facts.n_ctx

    def n_ctx_train(self) -> int:
        return self._facts.n_ctx_train

    def n_params(self) -> int:
        return self._facts.n_params

    def n_vocab(self) -> int:
        return self._facts.n_vocab

    def n_slots(self) -> int:
        return self._facts.n_slots

    def n_batch(self) -> int:
        return self._facts.n_batch

    def special_tokens(self) -> SpecialTokens:
        return self._facts.special

    # -- tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        result: list[int] = self._call("tokenize", text, special)
        return result

    def piece(self, token: int) -> bytes:
        key = (token, False)
        if key not in self._pieces:
            self._pieces[key] = self._call("piece", token)
        value = self._pieces[key]
        assert isinstance(value, bytes)
        return value

    def token_text(self, token: int) -> str:
        key = (token, True)
        if key not in self._pieces:
            self._pieces[key] = self._call("token_text", token)
        value = self._pieces[key]
        assert isinstance(value, str)
        return value

    def is_control(self, token: int) -> bool:
        return self._flag("is_control", token)

    def is_end_of_generation(self, token: int) -> bool:
        return self._flag("is_end_of_generation", token)

    def _flag(self, name: str, token: int) -> bool:
        key = (name, token)
        if key not in self._flags:
            self._flags[key] = bool(self._call(name, token))
        return self._flags[key]

    # -- generation ----------------------------------------------------------------------------

    def sampler(
        self, sampling: Sampling, grammar: str | None, recent: Sequence[int]
    ) -> RemoteSampler:
        sampler_id: int = self._call("sampler", sampling, grammar, list(recent))
        return RemoteSampler(self, sampler_id)

    def decode(self, spans: Sequence[Span], should_abort: Callable[[], bool] | None) -> bool:
        self._abort.value = 0
        decoded: bool = self._call(
            "decode", list(spans), should_abort is not None, should_abort=should_abort
        )
        return decoded

    def forget(self, seq: int, start: int) -> bool:
        kept: bool = self._call("forget", seq, start)
        return kept

    def logits(self, index: int) -> array[float]:
        row: array[float] = self._call("logits", index)
        return row

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        result: tuple[list[list[float]], int] = self._call("embed", list(texts))
        return result

    def close(self) -> None:
        if self._lost is None and self._process.is_alive():
            try:
                self._conn.send(("close", ()))
                self._process.join(_CLOSE_S)
            except OSError:
                pass  # already gone
        self._stop()

    # -- the pipe ------------------------------------------------------------------------------

    def _call(self, name: str, *args: Any, should_abort: Callable[[], bool] | None = None) -> Any:
        if self._lost is not None:
            raise self._lost
        try:
            self._conn.send((name, args))
        except OSError as exc:
            raise self._lose(f"the connection to the model's process broke ({exc})") from exc
        return self._wait(self._deadlines.call_s, name, should_abort)

    def _wait(
        self, timeout_s: float, doing: str, should_abort: Callable[[], bool] | None = None
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        try:
            while not self._conn.poll(_POLL_S):
                if should_abort is not None and not self._abort.value and should_abort():
                    self._abort.value = 1  # llama.cpp's abort callback reads it in the child
                if time.monotonic() >= deadline:
                    raise self._lose(f"no answer within {timeout_s:g} s while {doing}")
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._process.join(1.0)
            code = self._process.exitcode
            raise self._lose(f"the model's process ended (exit code {code}) while {doing}") from exc
        if kind == "error":
            raise _rebuild(payload)
        return payload

    def _lose(self, why: str) -> WorkerLost:
        self._stop()
        silent = []
        for worker in self._workers:
            try:
                probe_worker(worker, _LOST_PROBE_S)
            except AppError:
                silent.append(str(worker))
        who = (
            f"worker {', '.join(silent)} stopped answering"
            if silent
            else "a worker's connection was lost"
        )
        self._lost = WorkerLost(
            f"{who} ({why}); the model was unloaded: load it again"
            + (" without that worker" if silent else "")
        )
        log.warning("%s", self._lost.user_message)
        return self._lost

    def _stop(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join(_CLOSE_S)


class RemoteSampler:
    """A request's sampler chain, kept in the child next to the logits it reads."""

    def __init__(self, backend: ProcessBackend, sampler_id: int) -> None:
        self._backend = backend
        self._id: int | None = sampler_id

    def sample(self, index: int) -> int:
        token: int = self._backend._call("sample", self._id, index)
        return token

    def close(self) -> None:
        sampler_id, self._id = self._id, None
        if sampler_id is not None and self._backend._lost is None:
            self._backend._call("close_sampler", sampler_id)


# -- errors across the pipe -------------------------------------------------------------------


def _portable(exc: BaseException) -> tuple[str, str, dict[str, Any]]:
    """An error as (class, message, attributes): Homefire's errors keep their type (a
    ``ContextOverflow`` stays a 400), anything else becomes an ``AppError`` with its text."""
    if isinstance(exc, AppError) and type(exc).__module__ == "app.core.errors":
        return type(exc).__name__, exc.user_message, dict(vars(exc))
    return "AppError", f"llama.cpp failed: {exc}", {}


def _rebuild(payload: tuple[str, str, dict[str, Any]]) -> AppError:
    name, message, attributes = payload
    errors = importlib.import_module("app.core.errors")
    cls = getattr(errors, name, AppError)
    if not (isinstance(cls, type) and issubclass(cls, AppError)):
        cls = AppError
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    error.user_message = message
    return error


# -- child ------------------------------------------------------------------------------------


def _child_main(
    conn: Connection,
    abort_flag: Any,
    options: LoadOptions,
    endpoints: list[str],
    split: LayerSplit,
) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A lost worker aborts this process; ggml would first attach a debugger for a backtrace,
    # which takes seconds and fills the terminal. The parent reports the loss in words.
    os.environ["GGML_NO_BACKTRACE"] = "1"
    from app.core.cluster.ggml_rpc import register_worker

    try:
        for endpoint in endpoints:
            register_worker(endpoint)
        backend = LlamaBackend(
            replace(options, n_gpu_layers=split.n_gpu_layers), device_split=split.device_split
        )
    except BaseException as exc:  # noqa: BLE001 - the parent gets every failure as an error
        conn.send(("error", _portable(exc)))
        return
    conn.send(
        (
            "ok",
            _Facts(
                metadata=backend.metadata,
                n_ctx=backend.n_ctx(),
                n_ctx_train=backend.n_ctx_train(),
                n_params=backend.n_params(),
                n_vocab=backend.n_vocab(),
                n_slots=backend.n_slots(),
                n_batch=backend.n_batch(),
                special=backend.special_tokens(),
            ),
        )
    )
    _serve(conn, abort_flag, backend)


def _serve(conn: Connection, abort_flag: Any, backend: LlamaBackend) -> None:
    samplers: dict[int, Any] = {}
    ids = itertools.count(1)

    def should_abort() -> bool:
        return bool(abort_flag.value)

    def new_sampler(sampling: Sampling, grammar: str | None, recent: list[int]) -> int:
        sampler_id = next(ids)
        samplers[sampler_id] = backend.sampler(sampling, grammar, recent)
        return sampler_id

    def close_sampler(sampler_id: int) -> None:
        sampler = samplers.pop(sampler_id, None)
        if sampler is not None:
            sampler.close()

    calls: dict[str, Callable[..., Any]] = {
        "tokenize": lambda text, special: backend.tokenize(text, special=special),
        "piece": backend.piece,
        "token_text": backend.token_text,
        "is_control": backend.is_control,
        "is_end_of_generation": backend.is_end_of_generation,
        "sampler": new_sampler,
        "sample": lambda sampler_id, index: samplers[sampler_id].sample(index),
        "close_sampler": close_sampler,
        "decode": lambda spans, abortable: backend.decode(
            spans, should_abort if abortable else None
        ),
        "forget": backend.forget,
        "logits": backend.logits,
        "embed": backend.embed,
    }
    try:
        while True:
            try:
                name, args = conn.recv()
            except EOFError:
                return  # the parent closed the pipe, or died
            if name == "close":
                return
            try:
                result = ("ok", calls[name](*args))
            except BaseException as exc:  # noqa: BLE001 - the parent gets every failure
                result = ("error", _portable(exc))
            conn.send(result)
    finally:
        for sampler in samplers.values():
            sampler.close()
        backend.close()
