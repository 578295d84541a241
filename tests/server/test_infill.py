"""llama.cpp's ``/infill`` over real HTTP, as llama.vscode (axios) and llama.vim (curl) call it,
on tiny coder GGUFs with and without repository tokens.

Random weights: every assertion is about shapes, counts, finish reasons, or the same tokens
reached two ways, never about what the model chose to write.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.engine.fim import CURRENT_FILE, REPOSITORY_NAME
from app.core.server.client_names import INFILL_CLIENT
from app.core.services import AppServices
from tests.server.conftest import ServerFactory, TokenCounter, base_url
from tests.server.test_endpoint_safety import wait_for
from tests.server.tiny_coder import write_tiny_coder

N_CTX = 256
PREFIX = "def add(a, b):\n"
TYPED = "    "
SUFFIX = "\n    return c\n"
# What llama.vim sends (its ring buffer adds a "time" to each chunk).
EXTRA = [
    {"filename": "util.py", "text": "x = 1\n", "time": [1733300000, 12345]},
    {"filename": "lib/mod.py", "text": "def g():\n    pass\n", "time": [1733300001, 6789]},
]
LLAMA_VIM_FIELDS = [
    "content",
    "timings/prompt_n",
    "timings/prompt_ms",
    "timings/prompt_per_token_ms",
    "timings/prompt_per_second",
    "timings/predicted_n",
    "timings/predicted_ms",
    "timings/predicted_per_token_ms",
    "timings/predicted_per_second",
    "truncated",
    "tokens_cached",
]
CURL = {"user-agent": "curl/8.5.0"}
AXIOS = {"user-agent": "axios/1.7.9"}


@pytest.fixture
def served(serve: ServerFactory, tiny_coder_model: Path) -> tuple[AppServices, TokenCounter]:
    services = serve(tiny_coder_model, n_ctx=N_CTX)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    return services, counter


@pytest.fixture
def url(served: tuple[AppServices, TokenCounter]) -> str:
    return base_url(served[0])


@pytest.fixture(scope="module")
def repo_coder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coder(
        tmp_path_factory.mktemp("models") / "tiny-repo-coder.gguf", repository_tokens=True
    )


def _infill(url: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/infill", json=body, headers=headers or AXIOS, timeout=120)


def _raw_completion(url: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    reply = httpx.post(f"{url}/v1/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _events(url: str, **body: Any) -> list[dict[str, Any]]:
    with httpx.stream(
        "POST", f"{url}/infill", json={**body, "stream": True}, headers=CURL, timeout=120
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    assert all(frame.startswith("data: {") for frame in frames[:-1])  # no [DONE]: llama.cpp's
    return [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]


def test_an_infill_answers_in_llama_servers_shape(url: str) -> None:
    response = _infill(
        url, input_prefix=PREFIX, input_suffix=SUFFIX, prompt=TYPED, n_predict=6, temperature=0
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["stop"] is True
    assert answer["model"] == "tiny-coder"
    assert isinstance(answer["content"], str)
    assert 0 <= answer["tokens_predicted"] <= 6
    assert answer["stop_type"] in ("eos", "limit")
    assert (answer["stop_type"] == "limit") == (answer["tokens_predicted"] == 6)
    assert answer["truncated"] is False
    assert answer["tokens_cached"] == answer["tokens_evaluated"] + answer["tokens_predicted"]
    timings = answer["timings"]
    assert timings["predicted_n"] == answer["tokens_predicted"]
    assert timings["prompt_n"] + timings["cache_n"] == answer["tokens_evaluated"]
    assert timings["prompt_ms"] >= 0
    assert timings["predicted_per_second"] >= 0


def test_infill_and_a_raw_fim_completion_read_the_same_tokens_and_write_the_same_text(
    url: str,
) -> None:
    answer = _infill(
        url, input_prefix=PREFIX, input_suffix=SUFFIX, prompt=TYPED, n_predict=8, temperature=0
    ).json()
    raw = _raw_completion(
        url, f"<|fim_prefix|>{PREFIX}{TYPED}<|fim_suffix|>{SUFFIX}<|fim_middle|>", max_tokens=8
    )
    assert answer["tokens_evaluated"] == raw["usage"]["prompt_tokens"]
    assert answer["tokens_predicted"] == raw["usage"]["completion_tokens"]
    assert answer["content"] == raw["choices"][0]["text"]


def test_a_streamed_infill_sends_the_same_text_then_one_final_event(url: str) -> None:
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 8, "temperature": 0}
    whole = _infill(url, **body).json()
    events = _events(url, **body)
    *chunks, final = events
    assert all(event["stop"] is False for event in chunks)
    assert "".join(event["content"] for event in chunks) == whole["content"]
    assert final["stop"] is True
    assert final["content"] == ""
    for key in ("tokens_predicted", "tokens_evaluated", "stop_type", "truncated"):
        assert final[key] == whole[key]
    assert final["timings"]["predicted_n"] == whole["tokens_predicted"]


def test_other_files_go_before_the_prefix_as_text_under_their_names(url: str) -> None:
    # One file: each file is tokenized apart, so a raw prompt of several would differ at seams.
    answer = _infill(
        url, input_prefix=PREFIX, input_suffix=SUFFIX, input_extra=EXTRA[1:], n_predict=4
    ).json()
    file = "--- lib/mod.py ---\ndef g():\n    pass\n"
    raw = _raw_completion(
        url, f"{file}<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>", max_tokens=1
    )
    assert answer["tokens_evaluated"] == raw["usage"]["prompt_tokens"]
    assert answer["truncated"] is False


def test_other_files_use_the_repository_tokens_where_the_model_has_them(
    serve: ServerFactory, repo_coder_model: Path
) -> None:
    url = base_url(serve(repo_coder_model, n_ctx=N_CTX))
    answer = _infill(
        url, input_prefix=PREFIX, input_suffix=SUFFIX, input_extra=EXTRA, n_predict=4
    ).json()
    layout = (
        f"<|repo_name|>{REPOSITORY_NAME}\n<|file_sep|>util.py\nx = 1\n"
        f"<|file_sep|>lib/mod.py\ndef g():\n    pass\n<|file_sep|>{CURRENT_FILE}\n"
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )
    raw = _raw_completion(url, layout, max_tokens=1)
    assert answer["tokens_evaluated"] == raw["usage"]["prompt_tokens"]


def test_what_the_context_cannot_hold_is_cut_and_reported(url: str) -> None:
    many = [{"filename": f"f{i}.py", "text": f"v{i} = {i}\n" * 8} for i in range(40)]
    # Only the other files overflow: they are cut, the code around the cursor stays whole.
    short = _infill(url, input_prefix=PREFIX, input_suffix=SUFFIX, n_predict=16).json()
    files_cut = _infill(
        url, input_prefix=PREFIX, input_suffix=SUFFIX, input_extra=many, n_predict=16
    ).json()
    assert files_cut["truncated"] is True
    assert short["tokens_evaluated"] < files_cut["tokens_evaluated"] <= N_CTX - 16
    # The code itself overflows too: the prompt fills exactly what the reply leaves.
    all_cut = _infill(
        url,
        input_prefix="a = 1\n" * 400,
        input_suffix="b = 2\n" * 400,
        input_extra=many,
        n_predict=16,
    ).json()
    assert all_cut["truncated"] is True
    assert all_cut["tokens_evaluated"] == N_CTX - 16
    assert all_cut["tokens_evaluated"] + all_cut["tokens_predicted"] <= N_CTX


def test_a_warm_up_request_reads_the_context_and_writes_nothing(url: str) -> None:
    # llama.vim and llama.vscode send their ring of chunks with n_predict 0 between keystrokes.
    body = {"input_extra": EXTRA, "n_predict": 0, "samplers": [], "t_max_predict_ms": 1}
    warm = _infill(url, **body, response_fields=[""])
    assert warm.status_code == 200
    assert warm.json() == {}
    answer = _infill(url, **body).json()
    assert (answer["content"], answer["tokens_predicted"], answer["stop_type"]) == ("", 0, "limit")
    assert answer["timings"]["cache_n"] == answer["tokens_evaluated"] - 1


def test_response_fields_pick_nested_fields_by_path_as_llama_vim_asks(url: str) -> None:
    response = _infill(
        url,
        CURL,
        model="",  # llama.vim always sends its model_fim, empty by default
        id_slot=0,
        input_prefix=PREFIX,
        input_suffix=SUFFIX,
        prompt=TYPED,
        n_predict=4,
        top_k=40,
        top_p=0.99,
        samplers=["top_k", "top_p", "infill"],
        cache_prompt=True,
        t_max_prompt_ms=500,
        t_max_predict_ms=1500,
        n_indent=4,
        response_fields=[*LLAMA_VIM_FIELDS, "timings/nothing", "no/such/path"],
    )
    # llama.vim looks for this exact text before it decodes the answer.
    assert '"content":"' in response.text
    answer = response.json()
    assert sorted(answer) == sorted(LLAMA_VIM_FIELDS)
    assert answer["timings/predicted_n"] <= 4
    assert answer["truncated"] is False


@pytest.mark.parametrize("headers", [CURL, AXIOS, {"user-agent": ""}])
def test_the_editor_plugins_are_named_in_the_ledger_and_the_request_log(
    served: tuple[AppServices, TokenCounter], url: str, headers: dict[str, str]
) -> None:
    services, counter = served
    answer = _infill(url, headers, input_prefix=PREFIX, input_suffix=SUFFIX, n_predict=3).json()
    counter.wait_for_results(1)
    [row] = [r for r in services.ledger.records() if r.client == INFILL_CLIENT]
    assert row.source == "api"
    assert row.model == "tiny-coder"
    assert row.tokens.prompt == answer["tokens_evaluated"]
    assert row.tokens.completion == answer["tokens_predicted"]
    assert wait_for(lambda: len(services.request_log.records()) == 1)
    [record] = services.request_log.records()
    assert record.path == "/infill"
    assert record.client == INFILL_CLIENT
    assert record.prompt_tokens == answer["tokens_evaluated"]


def test_a_client_that_names_itself_keeps_its_name(
    served: tuple[AppServices, TokenCounter], url: str
) -> None:
    services, counter = served
    _infill(url, {"user-agent": "Continue/1.0"}, input_prefix=PREFIX, n_predict=2)
    counter.wait_for_results(1)
    assert [r.client for r in services.ledger.records()] == ["Continue"]


def test_a_model_without_fim_tokens_is_a_clear_400(serve: ServerFactory, tiny_model: Path) -> None:
    services = serve(tiny_model, n_ctx=N_CTX)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    for stream in (False, True):
        body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "stream": stream}
        response = _infill(base_url(services), **body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert "infill is not supported" in error["message"]
        assert "fill-in-the-middle" in error["message"]
    assert counter.results == []


def test_the_starter_model_has_no_fim_tokens_so_infill_is_a_400(
    serve: ServerFactory, starter_model: Path
) -> None:
    url = base_url(serve(starter_model, n_ctx=512))
    response = _infill(url, input_prefix=PREFIX, input_suffix=SUFFIX, n_predict=4)
    assert response.status_code == 400
    assert "infill is not supported" in response.json()["error"]["message"]


class _Gate:
    """An engine observer that holds the engine thread as a generation starts, until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.reached = threading.Event()

    def generation_started(self, *args: object) -> None:
        self.reached.set()
        assert self.opened.wait(60)

    def generation_progressed(self, *args: object) -> None:
        pass

    def generation_finished(self, *args: object) -> None:
        pass


def test_a_client_that_leaves_cancels_its_infill(
    served: tuple[AppServices, TokenCounter], url: str
) -> None:
    services, counter = served
    gate = _Gate()
    services.pool.add_observer(gate)
    body = json.dumps({"input_prefix": PREFIX, "n_predict": 200, "stream": True}).encode()
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /infill HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(request)
            assert gate.reached.wait(60)  # the generation holds its slot, the engine waits
        # The handler ends once it has seen the client leave, and the log records it.
        assert wait_for(lambda: len(services.request_log.records()) == 1, timeout_s=60)
    finally:
        gate.opened.set()
    (result,) = counter.wait_for_results(1)
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0


def test_an_unknown_model_is_404(url: str) -> None:
    response = _infill(url, model="qwen2.5-coder-7b", input_prefix=PREFIX)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"input_extra": "all of it"},
        {"input_extra": [{"filename": 5, "text": "x"}]},
        {"input_extra": [{"filename": "a.py", "text": ["x"]}]},
        {"input_extra": [None]},
        {"input_extra": [{"filename": "x" * 5000, "text": "x"}]},
        {"input_extra": [{"filename": "a.py", "text": "x"}] * 257},
        {"input_prefix": 12},
        {"input_suffix": {"a": 1}},
        {"n_predict": -2},
        {"n_predict": "many"},
        {"t_max_predict_ms": -1},
        {"temperature": -1},
        {"stop": [1, 2]},
        {"stop": ["x"] * 17},
        {"response_fields": "content"},
        {"response_fields": ["x"] * 65},
        {"stream": "yes please"},
    ],
)
def test_wrong_shapes_and_out_of_range_fields_are_400s(
    served: tuple[AppServices, TokenCounter], url: str, body: dict[str, Any]
) -> None:
    response = _infill(url, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None
    assert served[1].results == []


def test_megabytes_of_code_are_answered_cut_and_the_server_keeps_serving(url: str) -> None:
    huge = "x = 1\n" * 500_000  # 3 MB either side of the cursor and in one other file
    answer = _infill(
        url,
        input_prefix=huge,
        input_suffix=huge,
        input_extra=[{"filename": "big.py", "text": huge}],
        n_predict=4,
    ).json()
    assert answer["truncated"] is True
    assert answer["tokens_evaluated"] + answer["tokens_predicted"] <= N_CTX
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
