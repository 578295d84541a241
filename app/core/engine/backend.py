"""The only module that imports llama_cpp: loading a GGUF and stepping through tokens.

Everything here runs on the engine thread. The backend exposes exactly what the engine's loop
needs (tokenize apart with and without special tokens, a token stream with prefix reuse, token
pieces, end-of-generation checks), so the loop can later drive several sequences in one batch.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from app.core.engine.grammar_limits import check_grammar, check_schema
from app.core.engine.request import Sampling
from app.core.errors import ContextOverflow, ModelLoadError, UnsupportedRequest
from app.core.load_options import KvCacheType, LoadOptions

if TYPE_CHECKING:
    import llama_cpp

log = logging.getLogger(__name__)

_PIECE_BUFFER = 256
# The embedding context reads a whole input in one batch, so its size bounds an input's tokens.
EMBEDDING_CTX_MAX = 8192


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
        gbnf = str(json_schema_to_gbnf(json.dumps(schema)))
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


class LlamaBackend:
    """One loaded model. Not thread-safe: the engine thread alone calls it."""

    def __init__(self, options: LoadOptions) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        overrides_list = (
            *moe_expert_patterns(options.moe_experts_on_cpu_layers),
            *options.tensor_overrides,
        )
        self._overrides = _TensorOverrides(overrides_list) if overrides_list else None
        kwargs: dict[str, Any] = {
            "n_ctx": options.n_ctx,
            "n_gpu_layers": options.n_gpu_layers,
            "flash_attn": options.flash_attn,
            "use_mmap": options.use_mmap,
            "use_mlock": options.use_mlock,
            "verbose": False,
            "n_batch": min(512, options.n_ctx),
        }
        kwargs["n_threads"] = kwargs["n_threads_batch"] = options.n_threads or default_threads()
        if options.kv_cache_type != "f16":
            kwargs["type_k"] = _kv_type_id(options.kv_cache_type)
            kwargs["type_v"] = _kv_type_id(options.kv_cache_type)
        if options.seed is not None:
            kwargs["seed"] = options.seed
        try:
            with _model_params_with(self._overrides):
                self._llm: llama_cpp.Llama = llama_cpp.Llama(str(options.model_path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {options.model_path.name}: {exc}"
            ) from exc
        self._vocab = self._llm._model.vocab
        self._options = options
        self._kwargs = kwargs
        self._embedder: llama_cpp.Llama | None = None
        self._abort_flag: Callable[[], bool] = lambda: False
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._abort_flag())
        self._no_abort_cb = llama_cpp.ggml_abort_callback()  # NULL: llama.cpp checks nothing

    # -- facts ---------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._llm.metadata)

    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    def n_ctx_train(self) -> int:
        return int(self._llm._model.n_ctx_train())

    def n_params(self) -> int:
        return int(self._llm._model.n_params())

    def n_vocab(self) -> int:
        return int(self._llm.n_vocab())

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
        )

    # -- tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

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

    def cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of ``tokens`` are already in the KV cache."""
        cached = self._llm.n_tokens
        matched = 0
        for a, b in zip(self._llm._input_ids[:cached], tokens, strict=False):
            if a != b:
                break
            matched += 1
        return matched

    def token_stream(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        should_abort: Callable[[], bool],
        grammar: str | None = None,
    ) -> Iterator[int]:
        """Sampled tokens after ``prompt``, reusing the cached prefix; abortable during prefill."""
        checked = self._checked_grammar(grammar) if grammar is not None else None
        # Without a seed, each request samples differently (as the OpenAI API does).
        self._llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(32))
        self._abort_flag = should_abort
        tokens = self._llm.generate(
            prompt,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            reset=True,
            grammar=checked,
        )
        return self._abortable_prefill(tokens)

    def _abortable_prefill(self, tokens: Iterator[int]) -> Iterator[int]:
        """Let llama.cpp abort the prompt read (which may take minutes), but not each decode step.

        ggml calls the abort callback between graph nodes: a Python callback there costs every
        generated token several percent of its speed, while a cancel between tokens is checked
        by the engine anyway.
        """
        ctx = self._llm._ctx.ctx
        self._llama_cpp.llama_set_abort_callback(ctx, self._abort_cb, None)
        try:
            first = next(tokens, None)
            self._llama_cpp.llama_set_abort_callback(ctx, self._no_abort_cb, None)
            if first is None:
                return
            yield first
            yield from tokens
        finally:
            self._llama_cpp.llama_set_abort_callback(ctx, self._no_abort_cb, None)
            close = getattr(tokens, "close", None)
            if close is not None:
                close()

    def _checked_grammar(self, text: str) -> llama_cpp.LlamaGrammar:
        """Parse a GBNF grammar now: llama-cpp-python would add a NULL sampler (and crash)."""
        low = self._llama_cpp
        check_grammar(text)  # llama.cpp's parser recurses per nested group
        sampler = low.llama_sampler_init_grammar(self._vocab, text.encode("utf-8"), b"root")
        if not sampler:
            raise UnsupportedRequest("the output grammar could not be parsed")
        low.llama_sampler_free(sampler)
        return low.LlamaGrammar.from_string(text, verbose=False)

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
        kwargs.pop("seed", None)
        arch = self._llm.metadata.get("general.architecture", "")
        if f"{arch}.pooling_type" not in self._llm.metadata:
            kwargs["pooling_type"] = low.LLAMA_POOLING_TYPE_MEAN
        try:
            with _model_params_with(self._overrides):
                self._embedder = low.Llama(str(self._options.model_path), embedding=True, **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not create an embedding context: {exc}") from exc
        return self._embedder

    def forget_cache(self) -> None:
        """After an aborted prefill the KV cache state is unknown: start clean next time."""
        self._llm.reset()

    def close(self) -> None:
        self._abort_flag = lambda: False
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        self._llm.close()
