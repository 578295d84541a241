"""``homefire serve`` as a user runs it: a real process, its URL on stdout, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from app.cli import run
from app.core.server.config import API_KEY_ENV


def start(
    args: list[str], home: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.Popen[str]:
    environ = {**os.environ, "HOMEFIRE_HOME": str(home), **(env or {})}
    given: int = subprocess.DEVNULL
    if stdin is not None:  # what a user pipes in, then end of input
        given, writer = os.pipe()
        os.write(writer, stdin.encode())
        os.close(writer)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve", *args],
            env=environ,
            stdin=given,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if stdin is not None:
            os.close(given)


def test_serve_prints_its_url_serves_the_sdk_and_stops_on_sigterm(
    tiny_model: Path, homefire_home: Path
) -> None:
    flags = ["--no-load-on-request", "--keep-alive", "1h", "--max-loaded-models", "2"]
    process = start(
        ["--model", str(tiny_model), "--port", "0", "--ctx", "256", *flags], homefire_home
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving tiny-chatml (context 256) at http://127.0.0.1:")
        url = line.rsplit(" at ", 1)[1].strip()
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        # Load on request off: only the loaded model is listed (the starter is not).
        assert [m.id for m in client.models.list().data] == ["tiny-chatml"]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="gemma-3-270m", messages=[{"role": "user", "content": "Hi"}], max_tokens=1
            )
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


NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", API_KEY_ENV: ""}


@pytest.mark.parametrize(
    ("args", "env", "stdin", "warned"),
    [
        (["--api-key-stdin"], {}, "k3y-from-stdin\n", False),
        ([], {API_KEY_ENV: "k3y-from-env"}, None, False),
        (["--api-key", "k3y-on-the-command-line"], {}, None, True),
    ],
    ids=["stdin", "environment", "command-line"],
)
def test_serve_takes_its_key_from_stdin_the_environment_or_the_command_line(
    tiny_model: Path,
    homefire_home: Path,
    args: list[str],
    env: dict[str, str],
    stdin: str | None,
    warned: bool,
) -> None:
    key = (stdin or "").strip() or env.get(API_KEY_ENV) or args[-1]
    command = ["--model", str(tiny_model), "--port", "0", "--host", "0.0.0.0", *args]
    process = start(command, homefire_home, {**NO_KEYRING, **env}, stdin)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Serving tiny-chatml" in line
        url = "http://127.0.0.1:" + line.rsplit(":", 1)[1].split("/")[0]
        assert httpx.get(f"{url}/v1/models").status_code == 401
        authorised = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert authorised.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert ("shows the key to every user" in err) is warned
    assert key not in out + err


def test_an_empty_key_on_stdin_is_refused(tiny_model: Path, homefire_home: Path) -> None:
    process = start(
        ["--model", str(tiny_model), "--port", "0", "--api-key-stdin"], homefire_home, {}, "\n"
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "empty key" in err


def test_a_wildcard_cors_origin_in_the_settings_is_refused(
    tiny_model: Path, homefire_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = homefire_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"schema_version": 1, "server": {"cors_origins": ["*"]}}')
    assert run(["serve", "--model", str(tiny_model), "--port", "0"]) == 1
    assert "wildcards would let any page use the model" in capsys.readouterr().err


def test_no_extra_listener_after_model_load(tiny_model: Path, homefire_home: Path) -> None:
    """Only the API port listens: no RPC, debug or metrics port opens beside it."""
    import psutil

    process = start(["--model", str(tiny_model), "--port", "0"], homefire_home, NO_KEYRING)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", port)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_serve_with_a_plain_text_keyring_says_why_it_has_no_key(
    tiny_model: Path, homefire_home: Path, tmp_path: Path
) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        API_KEY_ENV: "",
    }
    command = ["--model", str(tiny_model), "--port", "0", "--host", "0.0.0.0"]
    process = start(command, homefire_home, env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "keeps secrets in a plain-text file, so Homefire does not use it" in err
    assert "needs an API key" in err
