"""The only module that imports llama_cpp: loading a GGUF and decoding batches of sequences.

Everything here runs on the engine thread. The backend exposes what the engine's scheduler
needs: tokenize apart with and without special tokens, one ``llama_decode`` over spans of several
sequences, a sampler chain per request, dropping a sequence's cached tail, token pieces and
end-of-generation checks. It is built on llama-cpp-python's low-level bindings because the
high-level ``Llama`` drives a single sequence.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import random
import re
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from app.core.engine.grammar_limits import check_grammar, check_schema
from app.core.engine.request import Sampling
from app.core.errors import AppError, ContextOverflow, ModelLoadError, UnsupportedRequest
from app.core.load_options import KvCacheType, LoadOptions

if TYPE_CHECKING:
    import llama_cpp

log = logging.getLogger(__name__)

_PIECE_BUFFER = 256
# The embedding context reads a whole input in one batch, so its size bounds an input's tokens.
EMBEDDING_CTX_MAX = 8192
# Recent tokens the repetition penalties look at (llama-cpp-python's last_n_tokens_size).
PENALTY_WINDOW = 64
# llama-cpp-python's converter lets a JSON string hold raw control characters, which JSON
# forbids (strict parsers such as pydantic's refuse the reply); llama.cpp's own rule excludes
# them, and so does this one.
_LOOSE_JSON_CHAR = r'char ::= [^"\\] |'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def grammar_from_json_schema(schema: object) -> str:
    """GBNF text that only admits JSON documents matching ``schema``.

    llama-cpp-python's converter (a port of llama.cpp's) signals unsupported schemas with
    assertions and assorted exceptions; all of them become ``UnsupportedRequest``. Remote
    ``$ref``s are never fetched.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not isinstance(schema, dict):
        raise UnsupportedRequest("a JSON schema must be an object")
    check_schema(schema)
    try:
        gbnf = str(json_schema_to_gbnf(json.dumps(schema))).replace(_LOOSE_JSON_CHAR, _JSON_CHAR)
    except RecursionError as exc:
        raise UnsupportedRequest("the JSON schema nests too deeply") from exc
    except Exception as exc:
        raise UnsupportedRequest(f"this JSON schema is not supported: {exc}") from exc
    check_grammar(gbnf)
    return gbnf


@dataclass(frozen=True)
class SpecialTokens:
    bos: int | None
    eos: int | None
    add_bos: bool
    fim_prefix: int | None
    fim_suffix: int | None
    fim_middle: int | None
    # Repository-level FIM: the repository name's and each file's leading token.
    fim_repo: int | None = None
    fim_sep: int | None = None


def _kv_type_id(kind: KvCacheType) -> int:
    import llama_cpp  # llama_cpp loads only with a model

    return {
        "f16": llama_cpp.GGML_TYPE_F16,
        "q8_0": llama_cpp.GGML_TYPE_Q8_0,
        "q4_0": llama_cpp.GGML_TYPE_Q4_0,
    }[kind]


def default_threads() -> int:
    """One thread per physical core, as llama.cpp's own tools do (llama-cpp-python's default is
    half the logical CPUs, which leaves a 2-core machine decoding on one)."""
    return psutil.cpu_count(logical=False) or max((os.cpu_count() or 2) // 2, 1)


def moe_expert_patterns(first_layers: int) -> tuple[tuple[str, str], ...]:
    """llama.cpp's --n-cpu-moe: the expert tensors of the first N layers stay in RAM."""
    if first_layers <= 0:
        return ()
    layers = "|".join(str(i) for i in range(first_layers))
    return ((rf"blk\.(?:{layers})\.ffn_(?:up|down|gate)_(?:ch|)exps", "CPU"),)


class _TensorOverrides:
    """A NULL-terminated ``llama_model_tensor_buft_override`` array kept alive for the model.

    ``Llama(...)`` has no tensor-override argument (its params struct declares the field unused),
    so we fill the field of the params it builds; the buffer types come from libggml's own
    functions, which llama_cpp does not bind.
    """

    class _Override(ctypes.Structure):
        _fields_ = (("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p))

    def __init__(self, overrides: Sequence[tuple[str, str]]) -> None:
        ggml = self._ggml()
        self._patterns = [pattern.encode() for pattern, _ in overrides]
        self.array = (self._Override * (len(overrides) + 1))()
        for i, ((pattern, buft_name), encoded) in enumerate(
            zip(overrides, self._patterns, strict=True)
        ):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ModelLoadError(
                    f"tensor override pattern {pattern!r} is invalid: {exc}"
                ) from exc
            self.array[i].pattern = encoded
            self.array[i].buft = self._buffer_type(ggml, buft_name)

    @staticmethod
    def _ggml() -> ctypes.CDLL:
        import llama_cpp

        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        # libggml holds the device registry and, through its dependencies, the CPU buffer type.
        for name in ("libggml.so", "libggml.dylib", "ggml.dll"):
            if (lib_dir / name).exists():
                return ctypes.CDLL(str(lib_dir / name))
        raise ModelLoadError("this llama-cpp-python build does not ship libggml")

    @staticmethod
    def _buffer_type(ggml: ctypes.CDLL, name: str) -> int:
        if name.upper() == "CPU":
            ggml.ggml_backend_cpu_buffer_type.restype = ctypes.c_void_p
            buft = ggml.ggml_backend_cpu_buffer_type()
        else:
            ggml.ggml_backend_dev_by_name.restype = ctypes.c_void_p
            ggml.ggml_backend_dev_by_name.argtypes = (ctypes.c_char_p,)
            device = ggml.ggml_backend_dev_by_name(name.encode())
            if not device:
                raise ModelLoadError(f"no device named {name!r} for a tensor override")
            ggml.ggml_backend_dev_buffer_type.restype = ctypes.c_void_p
            ggml.ggml_backend_dev_buffer_type.argtypes = (ctypes.c_void_p,)
            buft = ggml.ggml_backend_dev_buffer_type(device)
        if not buft:
            raise ModelLoadError(f"no buffer type for {name!r}")
        return int(buft)


@contextlib.contextmanager
def _model_params_with(overrides: _TensorOverrides | None) -> Iterator[None]:
    if overrides is None:
        yield
        return
    import llama_cpp.llama_cpp as low

    original: Callable[[], Any] = low.llama_model_default_params

    def patched() -> Any:
        params = original()
        params.tensor_buft_overrides = ctypes.addressof(overrides.array)
        return params

    # Only the engine thread loads models, so this swap cannot race another load.
    low.llama_model_default_params = patched
    try:
        yield
    finally:
        low.llama_model_default_params = original


@dataclass(frozen=True)
class Span:
    """Tokens of one sequence for the next decode, at positions ``start`` onwards."""

    seq: int
    start: int
    tokens: Sequence[int]
    logits: bool  # compute the next-token distribution after the span's last token


class SequenceSampler:
    """One request's sampler chain (llama.cpp's own samplers, grammar included).

    The chain's order is llama-cpp-python's: penalties, grammar, then greedy or
    top-k / top-p / min-p / temperature / a seeded draw.
    """

    def __init__(
        self,
        low: Any,
        ctx: Any,
        vocab: Any,
        sampling: Sampling,
        grammar: str | None,
        recent: Sequence[int],
    ) -> None:
        self._low = low
        self._ctx = ctx
        grammar_sampler = None
        if grammar is not None:
            check_grammar(grammar)  # llama.cpp's parser recurses per nested group
            grammar_sampler = low.llama_sampler_init_grammar(
                vocab, grammar.encode("utf-8"), b"root"
            )
            if not grammar_sampler:
                raise UnsupportedRequest("the output grammar could not be parsed")
        params = low.llama_sampler_chain_default_params()
        params.no_perf = True
        self._chain = low.llama_sampler_chain_init(params)
        add = low.llama_sampler_chain_add
        if (
            sampling.repeat_penalty != 1.0
            or sampling.frequency_penalty != 0.0
            or sampling.presence_penalty != 0.0
        ):
            penalties = _init_penalties(
                low,
                PENALTY_WINDOW,
                sampling.repeat_penalty,
                sampling.frequency_penalty,
                sampling.presence_penalty,
            )
            # The prompt's last tokens count towards repetition, as in llama.cpp's server.
            for token in recent[-PENALTY_WINDOW:]:
                low.llama_sampler_accept(penalties, token)
            add(self._chain, penalties)
        if grammar_sampler is not None:
            add(self._chain, grammar_sampler)
        seed = sampling.seed if sampling.seed is not None else random.getrandbits(32)
        temperature = sampling.temperature
        if temperature == 0.0:
            add(self._chain, low.llama_sampler_init_greedy())
        else:
            if temperature > 0.0:
                add(self._chain, low.llama_sampler_init_top_k(sampling.top_k))
                add(self._chain, low.llama_sampler_init_top_p(sampling.top_p, 1))
                add(self._chain, low.llama_sampler_init_min_p(sampling.min_p, 1))
                add(self._chain, low.llama_sampler_init_temp(temperature))
            # Without a seed, each request samples differently (as the OpenAI API does).
            add(self._chain, low.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, index: int) -> int:
        """Draw (and accept) the next token from the logits of the last decode's ``index``-th
        batch token."""
        return int(self._low.llama_sampler_sample(self._chain, self._ctx, index))

    def close(self) -> None:
        if self._chain is not None:
            self._low.llama_sampler_free(self._chain)
            self._chain = None


class LlamaBackend:
    """One loaded model with ``parallel`` sequence slots. The engine thread alone calls it.

    The context holds one KV cache shared by every slot ("unified", as llama-server's default
    ``-np auto``), sized ``parallel × n_ctx`` so each slot can always fill its own ``n_ctx``.
    One shared cache lets any set of active slots go through ``llama_decode`` as one
    micro-batch; separate per-slot caches would split a batch whenever the active sequence ids
    are not consecutive.
    """

    def __init__(self, options: LoadOptions, device_split: Sequence[float] = ()) -> None:
        """``device_split``: llama.cpp's tensor split, one weight per device in its device list
        (a worker's devices first, then this machine's GPUs); empty: llama.cpp's own."""
        import llama_cpp
        from llama_cpp import _internals, _logger

        # llama.cpp logs every load detail to stderr unless told otherwise (Llama does the same).
        _logger.set_verbose(False)
        low = llama_cpp
        self._llama_cpp = low
        overrides_list = (
            *moe_expert_patterns(options.moe_experts_on_cpu_layers),
            *options.tensor_overrides,
        )
        self._overrides = _TensorOverrides(overrides_list) if overrides_list else None
        self._options = options
        self._parallel = max(1, options.parallel)
        threads = options.n_threads or default_threads()
        # Kept for the embedding context, which llama-cpp-python's Llama builds.
        self._kwargs: dict[str, Any] = {
            "n_gpu_layers": options.n_gpu_layers,
            "flash_attn": options.flash_attn,
            "use_mmap": options.use_mmap,
            "use_mlock": options.use_mlock,
            "verbose": False,
            "n_threads": threads,
            "n_threads_batch": threads,
        }
        if options.kv_cache_type != "f16":
            self._kwargs["type_k"] = self._kwargs["type_v"] = _kv_type_id(options.kv_cache_type)
        model_params = low.llama_model_default_params()
        model_params.n_gpu_layers = options.n_gpu_layers
        model_params.load_mode = _load_mode(low, options.use_mmap, options.use_mlock)
        if self._overrides is not None:
            model_params.tensor_buft_overrides = ctypes.addressof(self._overrides.array)
        if device_split:
            devices = int(low.llama_max_devices())
            if len(device_split) > devices:
                raise ModelLoadError(f"llama.cpp takes at most {devices} devices in a split")
            # Kept alive with the backend: llama.cpp reads it during the load.
            self._device_split = (ctypes.c_float * devices)(*device_split)
            model_params.tensor_split = self._device_split
            self._kwargs["tensor_split"] = list(device_split)
        try:
            self._model = _internals.LlamaModel(
                path_model=str(options.model_path), params=model_params, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {options.model_path.name}: {exc}"
            ) from exc
        self._vocab = self._model.vocab
        self._n_batch = min(512, options.n_ctx)
        params = low.llama_context_default_params()
        params.n_ctx = options.n_ctx * self._parallel
        params.n_batch = params.n_ubatch = self._n_batch
        params.n_seq_max = self._parallel
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = (
            low.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if options.flash_attn
            else low.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.kv_unified = True
        # A full-size cache for sliding-window layers: a slot's cached prefix stays reusable
        # (a window-sized cache forgets the tokens a shortened prefix would need again).
        params.swa_full = True
        if options.kv_cache_type != "f16":
            params.type_k = params.type_v = _kv_type_id(options.kv_cache_type)
        ctx = low.llama_init_from_model(self._model.model, params)
        if not ctx:
            self._model.close()
            raise ModelLoadError(
                f"llama.cpp could not create a context for {options.model_path.name} "
                f"({self._parallel} × {options.n_ctx} tokens)"
            )
        self._ctx = ctx
        self._memory = low.llama_get_memory(ctx)
        self._batch = low.llama_batch_init(self._n_batch, 0, 1)
        self._embedder: llama_cpp.Llama | None = None
        self._abort_flag: Callable[[], bool] = lambda: False
        self._abort_cb = low.ggml_abort_callback(lambda _data: self._abort_flag())
        self._no_abort_cb = low.ggml_abort_callback()  # NULL: llama.cpp checks nothing
        self._abortable = False

    # -- facts ---------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._model.metadata())

    def n_ctx(self) -> int:
        """Tokens one slot can hold (prompt and reply)."""
        return self._options.n_ctx

    def n_ctx_train(self) -> int:
        return int(self._model.n_ctx_train())

    def n_params(self) -> int:
        return int(self._model.n_params())

    def n_slots(self) -> int:
        return self._parallel

    def n_batch(self) -> int:
        """The most tokens one decode step takes (running sequences and prompt chunks)."""
        return self._n_batch

    def n_vocab(self) -> int:
        return int(self._model.n_vocab())

    def special_tokens(self) -> SpecialTokens:
        low = self._llama_cpp
        vocab = self._vocab

        def token(value: int) -> int | None:
            return value if value >= 0 else None

        return SpecialTokens(
            bos=token(low.llama_vocab_bos(vocab)),
            eos=token(low.llama_vocab_eos(vocab)),
            add_bos=bool(low.llama_vocab_get_add_bos(vocab)),
            fim_prefix=token(low.llama_vocab_fim_pre(vocab)),
            fim_suffix=token(low.llama_vocab_fim_suf(vocab)),
            fim_middle=token(low.llama_vocab_fim_mid(vocab)),
            fim_repo=token(low.llama_vocab_fim_rep(vocab)),
            fim_sep=token(low.llama_vocab_fim_sep(vocab)),
        )

    # -- tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return list(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        size = self._llama_cpp.llama_token_to_piece(
            self._vocab, token, buffer, _PIECE_BUFFER, 0, False
        )
        return buffer.raw[: max(size, 0)]

    def token_text(self, token: int) -> str:
        """A token's text with special tokens spelled out (for building template strings)."""
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        size = self._llama_cpp.llama_token_to_piece(
            self._vocab, token, buffer, _PIECE_BUFFER, 0, True
        )
        return buffer.raw[: max(size, 0)].decode("utf-8", errors="replace")

    def is_control(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_control(self._vocab, token))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- generation ----------------------------------------------------------------------------

    def sampler(
        self, sampling: Sampling, grammar: str | None, recent: Sequence[int]
    ) -> SequenceSampler:
        """A sampler chain for one request; ``UnsupportedRequest`` for a grammar that won't parse."""
        return SequenceSampler(self._llama_cpp, self._ctx, self._vocab, sampling, grammar, recent)

    def decode(self, spans: Sequence[Span], should_abort: Callable[[], bool] | None) -> bool:
        """Run one ``llama_decode`` over every span; False when ``should_abort`` stopped it.

        A span with ``logits`` has its output at its last token's place in the batch. With
        ``should_abort`` llama.cpp polls it between graph nodes, which costs every step several
        percent, so the engine asks for it only while a prompt is being read. After an abort
        the spans' KV entries are in an unknown state: the caller forgets them.
        """
        batch = self._batch
        token, pos, n_seq, seq_id, logits = (
            batch.token,
            batch.pos,
            batch.n_seq_id,
            batch.seq_id,
            batch.logits,
        )
        i = 0
        for span in spans:
            last = len(span.tokens) - 1
            for offset, value in enumerate(span.tokens):
                token[i] = value
                pos[i] = span.start + offset
                n_seq[i] = 1
                seq_id[i][0] = span.seq
                logits[i] = span.logits and offset == last
                i += 1
        batch.n_tokens = i
        low = self._llama_cpp
        abortable = should_abort is not None
        if abortable != self._abortable:
            callback = self._abort_cb if abortable else self._no_abort_cb
            low.llama_set_abort_callback(self._ctx, callback, None)
            self._abortable = abortable
        self._abort_flag = should_abort or _never
        status = int(low.llama_decode(self._ctx, batch))
        if status == 2:
            return False
        if status != 0:
            raise AppError(f"llama.cpp could not decode a batch of {i} tokens (status {status})")
        return True

    def logits(self, index: int) -> array[float]:
        """The next-token logits at the last decode's ``index``-th batch token (a copy)."""
        row = self._llama_cpp.llama_get_logits_ith(self._ctx, index)
        if not row:
            raise AppError(f"the last decode computed no logits at batch position {index}")
        size = self.n_vocab() * ctypes.sizeof(ctypes.c_float)
        return array("f", ctypes.string_at(row, size))

    def forget(self, seq: int, start: int) -> bool:
        """Drop ``seq``'s KV entries from position ``start`` on; False if only all could go."""
        if self._llama_cpp.llama_memory_seq_rm(self._memory, seq, start, -1):
            return True
        self._llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
        return False

    # -- embeddings ----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """Normalised embeddings of ``texts`` and the tokens they took.

        llama.cpp computes embeddings only in a context created with ``embeddings`` on, so a
        second context over the same file is created on first use (the weights are memory-
        mapped, so they are shared) and lives as long as the model. Generative models have no
        pooling of their own: they get mean pooling.
        """
        embedder = self._embedding_context()
        n_ctx = int(embedder.n_ctx())
        vectors: list[list[float]] = []
        total = 0
        for text in texts:
            tokens = embedder.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            if len(tokens) > n_ctx:
                raise ContextOverflow(len(tokens), n_ctx)
            total += len(tokens)
            vector = embedder.embed(text, normalize=True, truncate=False)
            vectors.append([float(x) for x in vector])
        return vectors, total

    def _embedding_context(self) -> llama_cpp.Llama:
        if self._embedder is not None:
            return self._embedder
        low = self._llama_cpp
        size = max(64, min(self.n_ctx(), self.n_ctx_train(), EMBEDDING_CTX_MAX))
        kwargs = {**self._kwargs, "n_ctx": size, "n_batch": size, "n_ubatch": size}
        metadata = self.metadata
        arch = metadata.get("general.architecture", "")
        if f"{arch}.pooling_type" not in metadata:
            kwargs["pooling_type"] = low.LLAMA_POOLING_TYPE_MEAN
        try:
            with _model_params_with(self._overrides):
                self._embedder = low.Llama(str(self._options.model_path), embedding=True, **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not create an embedding context: {exc}") from exc
        return self._embedder

    def close(self) -> None:
        self._abort_flag = _never
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        low = self._llama_cpp
        if self._ctx is not None:
            low.llama_batch_free(self._batch)
            low.llama_free(self._ctx)
            self._ctx = None
            self._model.close()


def _never() -> bool:
    return False


def _load_mode(low: Any, use_mmap: bool, use_mlock: bool) -> int:
    if use_mmap and use_mlock:
        return int(low.LLAMA_LOAD_MODE_MMAP_MLOCK)
    if use_mlock:
        return int(low.LLAMA_LOAD_MODE_MLOCK)
    if use_mmap:
        return int(low.LLAMA_LOAD_MODE_MMAP)
    return int(low.LLAMA_LOAD_MODE_NONE)


def _init_penalties(low: Any, last_n: int, repeat: float, freq: float, present: float) -> Any:
    """``llama_sampler_init_penalties`` called with the C function's real four arguments.

    llama-cpp-python 0.3.36 still declares it with a leading ``n_vocab`` that llama.cpp
    dropped, so its binding refuses the real call (TypeError: any request with a repetition
    penalty was a 500). A fresh pointer to the same symbol (``_lib[...]`` is not cached) gets
    the right prototype without touching the shared binding.
    """
    lib = low.llama_cpp._lib
    init = lib["llama_sampler_init_penalties"]
    init.argtypes = [ctypes.c_int32, ctypes.c_float, ctypes.c_float, ctypes.c_float]
    init.restype = lib.llama_sampler_init_greedy.restype  # the binding's sampler pointer type
    return init(last_n, repeat, freq, present)
