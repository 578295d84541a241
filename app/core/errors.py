"""The error tree every core service raises. Each carries a message meant for the user.

The edges translate these by type: the CLI prints ``user_message``, the server maps them to
OpenAI- or Ollama-shaped JSON, the GUI shows them in one dialog (``Cancelled`` is silent).
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error Homefire raises on purpose."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class Cancelled(AppError):
    """The caller cancelled the work (Stop button, client disconnect, quit)."""

    def __init__(self, user_message: str = "cancelled") -> None:
        super().__init__(user_message)


class ConfigError(AppError):
    """A setting or an argument cannot be used as given."""


class ModelLoadError(AppError):
    """A model file cannot be loaded: llama.cpp refused it, or our header reader did."""


class ModelNotLoaded(AppError):
    """Work that needs a model was asked for while none is loaded."""


class UnknownModel(AppError):
    """A model name that is neither a file nor a model in the library."""


class AmbiguousModel(AppError):
    """A model name that could mean several library models."""

    def __init__(self, requested: str, candidates: list[str]) -> None:
        super().__init__(
            f"{requested!r} matches several models; name one of: {', '.join(candidates)}"
        )
        self.requested = requested
        self.candidates = candidates


class InsufficientMemory(AppError):
    """A model that does not fit the memory left, even after unloading every idle model.

    Raised before any load is attempted, so the machine never runs out of memory."""

    def __init__(self, model: str, needed_bytes: int, available_bytes: int, memory: str) -> None:
        super().__init__(
            f"{model} needs {_mib(needed_bytes)} of {memory} (estimated) but only "
            f"{_mib(available_bytes)} is available, counting idle models that could be "
            "unloaded; unload or unpin a model, load a smaller context or quantization, or "
            "lower the memory margin"
        )
        self.model = model
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        self.memory = memory


def _mib(n_bytes: int) -> str:
    # Errors sit below every other module, so they spell sizes themselves (one unit: MiB).
    return f"{max(n_bytes, 0) / 2**20:,.0f} MiB"


class PoolFull(AppError):
    """As many models are loaded as the settings allow and each one is busy or pinned."""

    def __init__(self, loaded: int, retry_after_s: int = 5) -> None:
        super().__init__(
            f"{loaded} models are loaded (the most allowed) and none is idle; try again shortly"
        )
        self.loaded = loaded
        self.retry_after_s = retry_after_s


class InvalidModelFile(ModelLoadError):
    """A file that is not a usable GGUF (bad magic, truncated, hostile header): refused by our
    header reader before llama.cpp sees it, so it is also a model that cannot load."""


class ContextOverflow(AppError):
    """A prompt that does not fit the loaded context window."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the loaded context holds {n_ctx}; "
            "shorten the prompt or load the model with a larger context"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class EngineBusy(AppError):
    """The engine's queue is full; the caller should retry later."""

    def __init__(self, pending: int, retry_after_s: int = 2) -> None:
        super().__init__(f"the engine has {pending} requests waiting; try again shortly")
        self.pending = pending
        self.retry_after_s = retry_after_s


class TemplateError(AppError):
    """A chat template that cannot be rendered safely."""


class HardwareProbeError(AppError):
    """A hardware probe could not read what it needs (reported as an absent part, not raised)."""


class DownloadError(AppError):
    """A download failed in a way the user must act on."""


class ChecksumMismatch(DownloadError):
    """Downloaded bytes do not match the sha256 the Hub published."""


class DiskFull(DownloadError):
    """Not enough free disk for a download."""


class HubError(AppError):
    """The Hugging Face Hub could not answer as needed."""


class GatedRepo(HubError):
    """The repo needs an accepted licence and a token."""


class RepoNotFound(HubError):
    """No such repo or file on the Hub."""


class HubOffline(HubError):
    """The Hub cannot be reached (or HF_HUB_OFFLINE is set) and nothing usable is cached."""


class StorageError(AppError):
    """Homefire's database cannot be opened, migrated or written (corrupt, newer, disk full)."""


class RateLimited(HubError):
    """The Hub answered 429: too many requests for now."""

    def __init__(self, user_message: str, retry_after_s: int | None = None) -> None:
        super().__init__(user_message)
        self.retry_after_s = retry_after_s


class HubUnavailable(HubError):
    """The Hub answered 5xx or the connection failed mid-way; worth retrying later."""


class UnsafeName(HubError):
    """A repo id or file name that could write outside the models folder (``..``, ``C:\\``, NUL)."""


class SizeMismatch(DownloadError):
    """The bytes received do not add up to the size the Hub published."""


class UnknownProfile(AppError):
    """A hardware profile name that is neither built in nor user-defined."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no hardware profile named {name!r}; known profiles: {', '.join(known) or 'none'}"
        )
        self.name = name
        self.known = known


class UnsupportedRequest(AppError):
    """A request the loaded model cannot serve as asked (FIM without FIM tokens, a JSON schema
    no grammar can express). Refused rather than served unconstrained."""


class SecretsUnavailable(AppError):
    """No OS keyring can hold a secret on this machine."""


class GrammarRefused(UnsupportedRequest):
    """A JSON schema, regex or grammar too large, too deep or invalid to become an output grammar.

    ``field`` is the dotted path of the offending keyword inside the schema ("" for the whole),
    so each dialect can name it from the request's own root."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class WorkerError(AppError):
    """A worker machine (``homefire worker``) cannot take or keep its part of a model."""


class WorkerUnreachable(WorkerError):
    """No worker answers at the address (nothing listening, a firewall, a wrong port, a timeout)."""


class WorkerIncompatible(WorkerError):
    """Something answers at the address, but not ggml's RPC protocol in our version."""


class WorkerTooSmall(WorkerError):
    """A worker (or the machines together) has too little free memory for its part of the model."""


class WorkerLost(WorkerError):
    """A worker stopped answering while a model split onto it was in use; the model is unloaded."""
