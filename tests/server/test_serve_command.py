"""``homefire serve`` as a user runs it: a real process, its URL on stdout, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai

from app.cli import run


def start(args: list[str], home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HOMEFIRE_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_prints_its_url_serves_the_sdk_and_stops_on_sigterm(
    tiny_model: Path, homefire_home: Path
) -> None:
    process = start(["--model", str(tiny_model), "--port", "0", "--ctx", "256"], homefire_home)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving tiny-chatml (context 256) at http://127.0.0.1:")
        url = line.rsplit(" at ", 1)[1].strip()
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-chatml"]
        reply = client.chat.completions.create(
            model="tiny-chatml", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens <= 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_serve_by_library_name_uses_the_starter_model(homefire_home: Path) -> None:
    process = start(["--model", "gemma-3-270m", "--port", "0", "--ctx", "512"], homefire_home)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Serving gemma-3-270m-q4_k_m (context 512)" in line, process.stderr
        url = line.rsplit(" at ", 1)[1].strip()
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_an_unknown_model_is_one_line_and_exit_1(capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(["serve", "--model", "no-such-model"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("homefire: no model named 'no-such-model'")
    assert "\n" not in err


def test_a_broken_gguf_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\xff" * 64)
    assert run(["serve", "--model", str(broken), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    (error,) = [line for line in err.splitlines() if line.startswith("homefire:")]
    assert "broken.gguf" in error
    assert "Traceback" not in err


def test_lan_without_a_key_is_refused(tiny_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(["serve", "--model", str(tiny_model), "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "API key" in capsys.readouterr().err
