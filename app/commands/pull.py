"""``homefire pull REPO``: download one GGUF variant of a Hub repo, resumably.

homefire pull REPO [--quant Q4_K_M] [--file NAME] [--revision main]

Without ``--quant`` or ``--file`` the recommender picks the variant for this machine (it reads
each variant's header with Range requests) and the command says so. Ctrl-C keeps the partial
file: the same command continues from where it stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from app.core.catalog.hub import HubVariant
from app.core.catalog.quants import normalise_quant_name
from app.core.downloads.manager import DownloadProgress, DownloadRequest
from app.core.errors import AppError, ConfigError, RepoNotFound
from app.core.services import AppServices
from app.core.sizes import format_size

# When the recommender cannot judge (no header, nothing fits), this order decides: the
# mid-size quants most uploaders publish and llama.cpp's README calls a good balance first.
FALLBACK_ORDER = ("Q4_K_M", "Q4_K_S", "IQ4_XS", "Q5_K_M", "Q4_0", "Q6_K", "Q8_0")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pull",
        help="download a GGUF model from the Hugging Face Hub",
        description=(
            "Download one quant of a Hub repo into Homefire's models folder (a Hugging Face "
            "cache). Ctrl-C pauses; the same command continues."
        ),
    )
    parser.add_argument("repo", help="a Hub repo id, e.g. bartowski/Qwen_Qwen3-4B-GGUF")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quant", help="the quant to fetch, e.g. Q4_K_M")
    which.add_argument("--file", help="a file in the repo (all shards of a split model follow)")
    parser.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with AppServices.create() as services:
        return _pull(args, services)


def _pull(args: argparse.Namespace, services: AppServices) -> int:
    hub = services.hub
    variants = [v for v in hub.variants(args.repo, args.revision) if v.complete]
    if not variants:
        raise RepoNotFound(f"{args.repo} has no complete GGUF variant to download")
    variant, why = choose_variant(variants, args.quant, args.file, services)
    print(  # noqa: T201
        f"{args.repo}: {variant.quant or variant.key}, {format_size(variant.size_bytes)} "
        f"in {len(variant.files)} file{'s' if len(variant.files) > 1 else ''} ({why})"
    )
    bar = ProgressBar(sys.stderr)
    request = DownloadRequest(args.repo, variant.files, args.revision)
    item = services.downloads.submit(request, bar.update)
    try:
        result = item.future.result()
    except KeyboardInterrupt:
        done = item.progress().bytes_done
        bar.finish()
        print(  # noqa: T201
            f"paused at {format_size(done)} of {format_size(variant.size_bytes)}; run the same "
            "command to continue",
            file=sys.stderr,
        )
        return 130
    bar.finish()
    if result.reused:
        print(f"already on disk in {result.reused}; nothing downloaded:")  # noqa: T201
    else:
        print("downloaded and verified (sha256):")  # noqa: T201
    for path in result.paths:
        print(f"  {path}")  # noqa: T201
    return 0


def choose_variant(
    variants: list[HubVariant], quant: str | None, filename: str | None, services: AppServices
) -> tuple[HubVariant, str]:
    """The variant asked for, or the recommender's pick for this machine, and why."""
    if filename is not None:
        for variant in variants:
            if filename in (f.path for f in variant.files):
                return variant, "the file asked for"
        raise ConfigError(f"{filename} is not a GGUF in this repo; files: {_keys(variants)}")
    if quant is not None:
        wanted = normalise_quant_name(quant)
        matching = [v for v in variants if v.quant == wanted]
        if len(matching) == 1:
            return matching[0], "the quant asked for"
        if matching:
            raise ConfigError(f"several {wanted} files; pick one with --file: {_keys(matching)}")
        raise ConfigError(f"no {wanted} variant; available: {_quants(variants)}")
    picked = _recommended(variants, services)
    if picked is not None:
        return picked
    for name in FALLBACK_ORDER:
        for variant in variants:
            if variant.quant == name:
                return variant, f"no --quant given: Homefire's default order picks {name}"
    smallest = min(variants, key=lambda v: v.size_bytes)
    return smallest, "no --quant given and no usual quant: the smallest variant"


def _recommended(
    variants: list[HubVariant], services: AppServices
) -> tuple[HubVariant, str] | None:
    """The recommender's pick, from each variant's header read over HTTP Range requests."""
    from app.core.catalog.recommend import recommend
    from app.core.catalog.remote_gguf import hub_variant_for, variants_for_repo

    try:
        described = variants_for_repo(variants[0].repo_id, services.hub)
        verdicts = recommend(services.this_machine(), described, n_ctx=4096)
    except AppError as exc:
        print(f"(cannot judge the variants for this machine: {exc.user_message})")  # noqa: T201
        return None
    pick = next((v for v in verdicts if v.recommended), None)
    variant = hub_variant_for(pick.variant, variants) if pick is not None else None
    if pick is None or variant is None:
        return None
    return variant, f"no --quant given: recommended for this machine, {pick.label}"


def _keys(variants: list[HubVariant]) -> str:
    return ", ".join(v.key for v in variants)


def _quants(variants: list[HubVariant]) -> str:
    return ", ".join(sorted({v.quant or v.key for v in variants}))


class ProgressBar:
    """One line: bar, bytes, measured speed, estimated time left. Plain lines when not a TTY."""

    def __init__(self, stream: TextIO, width: int = 28) -> None:
        self._stream = stream
        self._width = width
        self._tty = stream.isatty()
        self._last_line = ""
        self._last_print = 0.0
        self._drawn = False

    def update(self, progress: DownloadProgress) -> None:
        now = time.monotonic()
        line = self._line(progress)
        if self._tty:
            if now - self._last_print >= 0.1 or progress.state != "downloading":
                self._stream.write("\r" + line.ljust(len(self._last_line)))
                self._stream.flush()
                self._last_line, self._last_print, self._drawn = line, now, True
        elif progress.state != "downloading" and progress.message != self._last_line:
            self._stream.write(f"{progress.state}: {progress.message}\n")
            self._last_line = progress.message

    def finish(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._drawn = False

    def _line(self, p: DownloadProgress) -> str:
        filled = int(self._width * min(1.0, p.fraction))
        bar = "#" * filled + "-" * (self._width - filled)
        speed = f"{format_size(p.speed_bps)}/s" if p.speed_bps else "--"
        eta = _clock(p.eta_s) + " left" if p.eta_s is not None else ""
        status = "" if p.state == "downloading" else f"  {p.message}"
        done, total = format_size(p.bytes_done), format_size(p.total_bytes)
        return f"[{bar}] {p.fraction:4.0%} {done}/{total}  {speed}  {eta}{status}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
