"""Ready-to-paste settings for the coding tools that talk to a local endpoint (Qt-free text).

Each snippet follows the tool's own documented configuration format: the OpenAI dialect under
``/v1`` for most tools (Codex CLI through its Responses API), the Ollama dialect for Copilot Chat
and JetBrains, which discover models through ``/api/tags`` and ``/api/show``, the Anthropic
Messages dialect for Claude Code, and llama.cpp's ``/infill`` for llama.vscode and llama.vim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Clients such as the openai SDK and Copilot refuse an empty key; any text works without one.
PLACEHOLDER_KEY = "homefire"
# Claude Code's own system prompt and tool list take about 20k tokens before the first word.
CLAUDE_CODE_MIN_CONTEXT = 32768


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # http://127.0.0.1:8080, no trailing slash
    model: str
    api_key: str | None
    n_ctx: int


@dataclass(frozen=True)
class Snippet:
    client: str
    where: str  # where it goes
    text: str


def snippets(endpoint: Endpoint) -> list[Snippet]:
    return [
        continue_snippet(endpoint),
        cline_snippet(endpoint),
        zed_snippet(endpoint),
        aider_snippet(endpoint),
        open_webui_snippet(endpoint),
        jetbrains_snippet(endpoint),
        copilot_snippet(endpoint),
        claude_code_snippet(endpoint),
        codex_snippet(endpoint),
        llama_vscode_snippet(endpoint),
        llama_vim_snippet(endpoint),
    ]


# Both editor plugins fill in the middle: the model needs FIM tokens, which /infill checks.
_FIM_NOTE = "needs a code model trained for fill-in-the-middle, such as Qwen2.5-Coder"


def _key(endpoint: Endpoint) -> str:
    return endpoint.api_key or PLACEHOLDER_KEY


def continue_snippet(e: Endpoint) -> Snippet:
    text = (
        "models:\n"
        f"  - name: {e.model} (Homefire)\n"
        "    provider: openai\n"
        f"    model: {e.model}\n"
        f"    apiBase: {e.base_url}/v1\n"
        f"    apiKey: {_key(e)}\n"
        f"    defaultCompletionOptions:\n"
        f"      contextLength: {e.n_ctx}\n"
        "    roles: [chat, edit, apply, autocomplete]\n"
    )
    return Snippet("Continue", "~/.continue/config.yaml", text)


def cline_snippet(e: Endpoint) -> Snippet:
    text = (
        "API Provider:  OpenAI Compatible\n"
        f"Base URL:      {e.base_url}/v1\n"
        f"API Key:       {_key(e)}\n"
        f"Model ID:      {e.model}\n"
        f"Context Window Size: {e.n_ctx}\n"
    )
    return Snippet("Cline", "Cline › Settings (gear icon) › API Configuration", text)


def zed_snippet(e: Endpoint) -> Snippet:
    settings = {
        "language_models": {
            "openai_compatible": {
                "Homefire": {
                    "api_url": f"{e.base_url}/v1",
                    "available_models": [
                        {
                            "name": e.model,
                            "display_name": f"{e.model} (Homefire)",
                            "max_tokens": e.n_ctx,
                            "capabilities": {
                                "tools": True,
                                "images": False,
                                "parallel_tool_calls": False,
                                "prompt_cache_key": False,
                            },
                        }
                    ],
                }
            }
        }
    }
    text = (
        json.dumps(settings, indent=2) + f"\n// API key (asked for in the Agent panel): {_key(e)}\n"
    )
    return Snippet("Zed", "Zed settings.json (merge with what is there)", text)


def aider_snippet(e: Endpoint) -> Snippet:
    text = (
        f"export OPENAI_API_BASE={e.base_url}/v1\n"
        f"export OPENAI_API_KEY={_key(e)}\n"
        f"aider --model openai/{e.model}\n"
    )
    return Snippet("Aider", "a terminal", text)


def open_webui_snippet(e: Endpoint) -> Snippet:
    docker = e.base_url.replace("127.0.0.1", "host.docker.internal").replace(
        "localhost", "host.docker.internal"
    )
    text = (
        "Admin Panel › Settings › Connections › OpenAI API › Add connection\n"
        f"URL:  {e.base_url}/v1\n"
        f"Key:  {_key(e)}\n\n"
        "Open WebUI in Docker reaches the host at:\n"
        f"URL:  {docker}/v1   (turn on LAN access here, with an API key)\n"
    )
    return Snippet("Open WebUI", "Open WebUI admin settings", text)


def jetbrains_snippet(e: Endpoint) -> Snippet:
    text = (
        "Settings › Tools › AI Assistant › Providers & API keys\n"
        "Provider:  Ollama\n"
        f"URL:       {e.base_url}\n\n"
        "or Provider: OpenAI-compatible\n"
        f"URL:       {e.base_url}/v1\n"
        f"API key:   {_key(e)}\n"
        f"Model:     {e.model}\n"
    )
    return Snippet("JetBrains", "JetBrains AI Assistant settings", text)


def copilot_snippet(e: Endpoint) -> Snippet:
    settings = {"github.copilot.chat.byok.ollamaEndpoint": e.base_url}
    text = (
        json.dumps(settings, indent=2)
        + "\n// Then: Copilot Chat › model picker › Manage Models… › Ollama, and pick "
        + f"{e.model}.\n"
    )
    if e.api_key:
        text += "// Copilot's Ollama provider sends no API key: use it on loopback without one.\n"
    return Snippet("Copilot", "VS Code settings.json", text)


def claude_code_snippet(e: Endpoint) -> Snippet:
    # AUTH_TOKEN goes out as "Authorization: Bearer", which Claude Code uses without asking
    # (an ANTHROPIC_API_KEY it asks the user to approve first). Its background requests
    # (titles, summaries) name the Haiku model, so that one points at the local model too.
    text = (
        f"export ANTHROPIC_BASE_URL={e.base_url}\n"
        f"export ANTHROPIC_AUTH_TOKEN={_key(e)}\n"
        f"export ANTHROPIC_MODEL={e.model}\n"
        f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={e.model}\n"
        "claude\n"
    )
    if e.n_ctx < CLAUDE_CODE_MIN_CONTEXT:
        text += (
            f"# Claude Code's own prompt is about 20k tokens: load {e.model} with a context of "
            f"{CLAUDE_CODE_MIN_CONTEXT} or more (now {e.n_ctx}).\n"
        )
    return Snippet("Claude Code", "a terminal", text)


def llama_vscode_snippet(e: Endpoint) -> Snippet:
    settings = {"llama-vscode.endpoint": e.base_url}
    if e.api_key:
        settings["llama-vscode.api_key"] = e.api_key
    text = json.dumps(settings, indent=2) + f"\n// Completes with {e.model}; {_FIM_NOTE}.\n"
    return Snippet("llama.vscode", "VS Code settings.json", text)


def llama_vim_snippet(e: Endpoint) -> Snippet:
    text = (
        "let g:llama_config = {\n"
        f"    \\ 'endpoint_fim': '{e.base_url}/infill',\n"
        f"    \\ 'model_fim': '{e.model}',\n"
        f"    \\ 'api_key': '{e.api_key or ''}',\n"
        "    \\ }\n"
        f'" Completes with {e.model}; {_FIM_NOTE}.\n'
    )
    return Snippet("llama.vim", "vimrc (before llama.vim loads)", text)


def codex_snippet(e: Endpoint) -> Snippet:
    # Root keys come before tables in TOML. Codex reads the key from the variable env_key names.
    text = (
        f'model = "{e.model}"\n'
        'model_provider = "homefire"\n'
        f"model_context_window = {e.n_ctx}\n\n"
        "[model_providers.homefire]\n"
        'name = "Homefire"\n'
        f'base_url = "{e.base_url}/v1"\n'
        'wire_api = "responses"\n'
    )
    if e.api_key:
        text += (
            'env_key = "HOMEFIRE_API_KEY"\n'
            f"# then, in the shell that runs codex: export HOMEFIRE_API_KEY={e.api_key}\n"
        )
    return Snippet("Codex CLI", "~/.codex/config.toml", text)
