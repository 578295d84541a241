"""Fill-in-the-middle prompts with other files as context, cut to fit; read-only requests; the
line deadline. Real llama.cpp tokenizers on tiny coder GGUFs (with and without repository
tokens); the only assertions are about tokens, counts and finish reasons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine.backend import LlamaBackend
from app.core.engine.engine import Engine
from app.core.engine.fim import CURRENT_FILE, REPOSITORY_NAME, fim_prompt, reply_room
from app.core.engine.request import ContextFile, GenerationRequest, Sampling
from app.core.load_options import LoadOptions
from tests.server.tiny_coder import write_tiny_coder

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n    return c\n"
FILES = (ContextFile("util.py", "x = 1\n"), ContextFile("lib/mod.py", "def g():\n    pass\n"))


@pytest.fixture(scope="module")
def coder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coder(tmp_path_factory.mktemp("models") / "tiny-coder.gguf")


@pytest.fixture(scope="module")
def repo_coder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coder(
        tmp_path_factory.mktemp("models") / "tiny-repo-coder.gguf", repository_tokens=True
    )


@pytest.fixture(scope="module")
def coder(coder_path: Path) -> Iterator[LlamaBackend]:
    backend = LlamaBackend(LoadOptions(model_path=coder_path, n_ctx=256))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def repo_coder(repo_coder_path: Path) -> Iterator[LlamaBackend]:
    backend = LlamaBackend(LoadOptions(model_path=repo_coder_path, n_ctx=256))
    yield backend
    backend.close()


def _text(backend: LlamaBackend, text: str) -> list[int]:
    return backend.tokenize(text, special=False)


def test_without_files_or_budget_the_prompt_is_the_three_fim_tokens_around_the_code(
    coder: LlamaBackend,
) -> None:
    special = coder.special_tokens()
    prompt = fim_prompt(coder, special, PREFIX, SUFFIX)
    assert prompt.tokens == [
        special.fim_prefix,
        *_text(coder, PREFIX),
        special.fim_suffix,
        *_text(coder, SUFFIX),
        special.fim_middle,
    ]
    assert not prompt.truncated


def test_files_are_text_under_their_names_without_repository_tokens(coder: LlamaBackend) -> None:
    special = coder.special_tokens()
    assert special.fim_repo is None
    prompt = fim_prompt(coder, special, PREFIX, SUFFIX, FILES)
    plain = fim_prompt(coder, special, PREFIX, SUFFIX)
    files = [
        *_text(coder, "--- util.py ---\nx = 1\n"),
        *_text(coder, "--- lib/mod.py ---\ndef g():\n    pass\n"),
    ]
    assert prompt.tokens == files + plain.tokens
    assert not prompt.truncated


def test_files_use_the_repository_layout_where_the_vocabulary_has_it(
    repo_coder: LlamaBackend,
) -> None:
    special = repo_coder.special_tokens()
    assert special.fim_repo is not None
    assert special.fim_sep is not None
    prompt = fim_prompt(repo_coder, special, PREFIX, SUFFIX, FILES)
    plain = fim_prompt(repo_coder, special, PREFIX, SUFFIX)
    expected = [
        special.fim_repo,
        *_text(repo_coder, REPOSITORY_NAME + "\n"),
        special.fim_sep,
        *_text(repo_coder, "util.py\nx = 1\n"),
        special.fim_sep,
        *_text(repo_coder, "lib/mod.py\ndef g():\n    pass\n"),
        special.fim_sep,
        *_text(repo_coder, CURRENT_FILE + "\n"),
        *plain.tokens,
    ]
    assert prompt.tokens == expected


def test_the_oldest_files_go_first_when_the_budget_is_short(repo_coder: LlamaBackend) -> None:
    special = repo_coder.special_tokens()
    whole = fim_prompt(repo_coder, special, PREFIX, SUFFIX, FILES)
    newest_only = fim_prompt(repo_coder, special, PREFIX, SUFFIX, FILES[1:])
    # One token short of both files: the older one is dropped, the code stays whole.
    cut = fim_prompt(repo_coder, special, PREFIX, SUFFIX, FILES, budget=len(whole.tokens) - 1)
    assert cut.tokens == newest_only.tokens
    assert cut.truncated
    exact = fim_prompt(repo_coder, special, PREFIX, SUFFIX, FILES, budget=len(whole.tokens))
    assert exact.tokens == whole.tokens
    assert not exact.truncated


def test_the_prefix_is_cut_from_the_left_and_the_suffix_from_the_right(
    coder: LlamaBackend,
) -> None:
    special = coder.special_tokens()
    prefix, suffix = "a = 1\n" * 60, "b = 2\n" * 60
    before, after = _text(coder, prefix), _text(coder, suffix)
    budget = 100
    prompt = fim_prompt(coder, special, prefix, suffix, FILES, budget=budget)
    assert prompt.truncated
    assert len(prompt.tokens) == budget  # the files went first, then the code was cut to fit
    room = budget - 3
    kept_after = room // 4  # both sides are long: the prefix keeps three quarters
    assert prompt.tokens == [
        special.fim_prefix,
        *before[len(before) - (room - kept_after) :],
        special.fim_suffix,
        *after[:kept_after],
        special.fim_middle,
    ]


def test_a_short_suffix_leaves_the_prefix_all_the_rest(coder: LlamaBackend) -> None:
    special = coder.special_tokens()
    prefix, suffix = "a = 1\n" * 60, "):"
    before, after = _text(coder, prefix), _text(coder, suffix)
    assert len(after) < (50 - 3) // 4
    prompt = fim_prompt(coder, special, prefix, suffix, budget=50)
    assert prompt.truncated
    assert prompt.tokens[-len(after) - 2 :] == [special.fim_suffix, *after, special.fim_middle]
    assert prompt.tokens[1 : 1 + 50 - 3 - len(after)] == before[-(50 - 3 - len(after)) :]


def test_megabytes_of_code_are_cut_before_tokenizing(coder: LlamaBackend) -> None:
    special = coder.special_tokens()
    huge = "x" * 5_000_000
    files = (ContextFile("big.py", huge), *FILES)
    prompt = fim_prompt(coder, special, huge, huge, files, budget=200)
    assert prompt.truncated
    assert len(prompt.tokens) <= 200


def test_the_reply_keeps_its_room_within_half_the_context() -> None:
    assert reply_room(256, 16) == 16
    assert reply_room(256, None) == 64
    assert reply_room(256, 10**9) == 128
    assert reply_room(256, 0) == 1


# -- through the engine ----------------------------------------------------------------------


@pytest.fixture
def coder_engine(engine: Engine, repo_coder_path: Path) -> Engine:
    engine.load(LoadOptions(model_path=repo_coder_path, n_ctx=256, seed=1, parallel=1)).result()
    return engine


def test_a_long_fim_request_is_cut_to_leave_its_reply_room(coder_engine: Engine) -> None:
    request = GenerationRequest(
        prompt="a = 1\n" * 200, suffix="b = 2\n" * 200, context_files=FILES, max_tokens=20
    )
    result = coder_engine.generate(request).result()
    assert result.prompt_truncated
    assert result.prompt_tokens == 256 - 20  # BOS included
    assert result.completion_tokens <= 20


def test_zero_max_tokens_reads_the_prompt_into_the_cache_and_generates_nothing(
    coder_engine: Engine,
) -> None:
    request = GenerationRequest(prompt=PREFIX, suffix=SUFFIX, context_files=FILES, max_tokens=0)
    warm = coder_engine.generate(request).result()
    assert (warm.text, warm.completion_tokens, warm.finish_reason) == ("", 0, "length")
    assert warm.time_to_first_token_s is None
    again = coder_engine.generate(request).result()
    # The next request reuses all but the last prompt token (read again for its logits).
    assert again.cached_prompt_tokens == again.prompt_tokens - 1


def test_past_the_line_deadline_a_reply_ends_at_its_next_line_break(coder_engine: Engine) -> None:
    grammar = 'root ::= "ab\\ncd\\nef"'
    greedy = Sampling(temperature=0.0)
    whole = coder_engine.generate(
        GenerationRequest(prompt="x", grammar=grammar, max_tokens=30, sampling=greedy)
    ).result()
    assert (whole.text, whole.finish_reason) == ("ab\ncd\nef", "stop")
    cut = coder_engine.generate(
        GenerationRequest(
            prompt="x", grammar=grammar, max_tokens=30, sampling=greedy, line_deadline_s=0.0
        )
    ).result()
    assert cut.text == "ab\n"
    assert cut.finish_reason == "length"
