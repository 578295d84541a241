"""``homefire fit MODEL``: every quant of a model against a machine, with the recommended one marked.

MODEL is a local GGUF (its header is read, not its weights), a catalog name, or a Hub repo id.
``--json`` prints ``{"schema": 1, ...}``; the keys are documented in the README and pinned by
tests.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.catalog.calibration import FitCalibration, LoadMeasurement
from app.core.catalog.catalog import catalog_variants, find_entry, load_catalog
from app.core.catalog.cluster import (
    Cluster,
    ClusterMember,
    ClusterVerdict,
    MemberShare,
    recommend_cluster,
)
from app.core.catalog.estimator import HEADER_BASIS, parallel_cost_bytes
from app.core.catalog.hub import HubClient
from app.core.catalog.load_plan import variant_for_file
from app.core.catalog.recommend import Goal, Variant, Verdict, recommend
from app.core.catalog.remote_gguf import variants_for_repo as remote_variants_for_repo
from app.core.errors import (
    ConfigError,
    HubOffline,
    InvalidModelFile,
    UnknownModel,
    WorkerError,
)
from app.core.hardware.profile import HardwareProfile
from app.core.library.library import ModelLibrary
from app.core.load_options import KV_CACHE_TYPES
from app.core.services import AppServices
from app.core.sizes import format_size

JSON_SCHEMA = 1
# Slots shown beside the recommendation: chat, an agent and autocomplete at once.
FIT_PARALLEL = 4
SPEED_BASIS = "estimated: bandwidth × efficiency ÷ weights read per token (short context)"
QUALITY_BASIS = "KL-divergence vs FP16 measured on Llama-3-8B (llama.cpp); ranks quants"
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="which quant of a model fits this machine (or a planning profile)",
        description="Estimate memory, speed and quality of every quant of MODEL "
        "(a GGUF path, a catalog name or a Hub repo id) and mark the one to use.",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--ctx", type=int, default=8192, help="context length (default 8192)")
    parser.add_argument("--profile", help="plan for a hardware profile instead of this machine")
    parser.add_argument(
        "--kv-type",
        dest="kv_cache_type",
        choices=KV_CACHE_TYPES,
        default="f16",
        help="KV cache type (a quantized one implies flash attention)",
    )
    parser.add_argument(
        "--goal", choices=("balanced", "quality", "speed"), default="balanced",
        help="what the recommendation favours (default balanced)",
    )  # fmt: skip
    parser.add_argument(
        "--cluster",
        action="append",
        metavar="PROFILE",
        help='plan across workers too: a profile or "N x PROFILE" (repeatable), e.g. '
        '"2x Mac Studio M3 Ultra 256GB"',
    )
    parser.add_argument(
        "--worker",
        action="append",
        metavar="HOST:PORT",
        help="plan with a running `homefire worker` and the memory it reports (repeatable; "
        "default: the setting engine.workers when neither --cluster nor --profile is given)",
    )
    parser.add_argument(
        "--link-gbps",
        type=float,
        help="network bandwidth to the workers in Gbit/s (default: setting "
        "engine.worker_link_gbps, 10)",
    )
    parser.add_argument("--json", action="store_true", help="stable JSON output (schema 1)")
    parser.set_defaults(func=run)


def variants_for_repo(repo_id: str, hub: HubClient) -> list[Variant]:
    """A Hub repo's variants: from the catalog when it knows the repo (no network), else from
    each variant's GGUF header read over HTTP Range requests (no weights downloaded)."""
    entry = find_entry(repo_id, load_catalog())
    if entry is not None:
        return catalog_variants(entry)
    try:
        return remote_variants_for_repo(repo_id, hub)
    except HubOffline as exc:
        raise HubOffline(
            f"cannot plan for {repo_id}: it is not in the catalog and the Hub cannot be read "
            f"({exc.user_message}); unknown: its quants, file sizes and architecture"
        ) from exc


def variants_for_file(path: Path) -> tuple[str, list[Variant]]:
    file = variant_for_file(path)
    return file.name, [file.variant]


def resolve_model(model: str, services: AppServices) -> tuple[str, list[Variant]]:
    path = Path(model).expanduser()
    if path.exists():
        if path.is_dir():
            raise InvalidModelFile(f"{path} is a folder, not a GGUF file")
        return variants_for_file(path)
    if model.lower().endswith(".gguf"):
        raise InvalidModelFile(f"{path}: no such file")
    entry = find_entry(model, load_catalog())
    if entry is not None:
        return entry.name, catalog_variants(entry)
    library_path = _library_file(model, services.library)
    if library_path is not None:
        return variants_for_file(library_path)
    if _REPO_RE.match(model):
        return model, variants_for_repo(model, services.hub)
    raise UnknownModel(f"{model!r} is not a GGUF file, a catalog model or a Hub repo id")


def _library_file(name: str, library: ModelLibrary) -> Path | None:
    """A model in Homefire's library (its downloads, the starter model, other tools')."""
    try:
        return library.local_path(library.resolve(name))
    except UnknownModel:
        return None


def machine_profile(name: str | None, services: AppServices) -> HardwareProfile:
    """The named planning profile, else this machine (its RAM bandwidth measured if need be)."""
    from app.core.hardware.profiles import get_profile

    return get_profile(name, services.paths) if name else services.this_machine()


def run(args: argparse.Namespace) -> int:
    if args.ctx < 1:
        raise ConfigError("--ctx must be a positive number of tokens")
    if args.link_gbps is not None and not args.link_gbps > 0:
        raise ConfigError("--link-gbps must be a positive number of Gbit/s")
    with AppServices.create() as services:
        title, variants = resolve_model(args.model, services)
        # Only this machine's own loads correct its estimates; planning never creates the database.
        here = not args.profile and services.paths.database_file.exists()
        calibration = services.fit_feedback.calibration if here else None
        profile = machine_profile(args.profile, services)
        correction = calibration.correction() if calibration else None
        measured = _measured_here(calibration, variants)
        cluster, note = _cluster(args, profile, services)
    goal: Goal = args.goal
    verdicts = recommend(profile, variants, args.ctx, goal, args.kv_cache_type, correction)
    planned = recommend_cluster(variants, args.ctx, cluster, args.kv_cache_type) if cluster else []
    if args.json:
        report = to_json(title, profile, args, verdicts)
        report["measured_here"] = [_measurement_json(m) for m in measured]
        add_cluster_json(report, cluster, planned)
        report["cluster_note"] = note
        print(json.dumps(report, indent=2))  # noqa: T201
    else:
        print(render_table(title, profile, args.ctx, verdicts))  # noqa: T201
        if cluster is not None:
            print(render_cluster(cluster, planned))  # noqa: T201
        if note:
            print(f"\n{note}")  # noqa: T201
        for line in _measured_lines(measured):
            print(line)  # noqa: T201
    return 0


def _cluster(
    args: argparse.Namespace, profile: HardwareProfile, services: AppServices
) -> tuple[Cluster | None, str | None]:
    """The machine planned for plus its workers: planning profiles (``--cluster``) and live
    workers (``--worker``, else the settings' when planning this machine alone). None without
    any; a settings worker that cannot be probed leaves a note instead of an error."""
    from app.core.hardware.profiles import get_profiles

    profiles = [w for spec in args.cluster or () for w in get_profiles(spec, services.paths)]
    names = [p.name for p in profiles]
    workers = []
    for index, worker in enumerate(profiles):
        member = ClusterMember.of_profile(worker, "worker")
        if names.count(worker.name) > 1:  # "Mac Studio M3 Ultra 256GB #2": tell twins apart
            member = replace(member, name=f"{worker.name} #{names[: index + 1].count(worker.name)}")
        workers.append(member)
    note = None
    if args.worker:
        workers += services.worker_members(args.worker)
    elif not args.cluster and not args.profile and services.settings.engine.workers:
        try:
            workers += services.worker_members(services.settings.engine.workers)
        except WorkerError as exc:
            note = f"workers in settings not planned with: {exc.user_message}"
    if not workers:
        return None, note
    link = args.link_gbps or services.settings.engine.worker_link_gbps
    return Cluster(ClusterMember.of_profile(profile, "here"), tuple(workers), link), note


def _measured_here(
    calibration: FitCalibration | None, variants: list[Variant]
) -> list[LoadMeasurement]:
    if calibration is None:
        return []
    found: list[LoadMeasurement] = []
    for variant in variants:
        for file in variant.files[:1]:
            path = Path(file)
            if path.is_file():
                found += calibration.measurements(path.resolve(), limit=5)
    return found


def _measured_lines(measured: list[LoadMeasurement]) -> list[str]:
    if not measured:
        return []
    lines = [
        "",
        "measured here (resident memory growth over the load; decode speed of real replies):",
    ]
    for m in measured:
        speed = "" if m.measured_tokens_per_s is None else f", {m.measured_tokens_per_s:.0f} tok/s"
        lines.append(
            f"  {m.measured_at:%Y-%m-%d %H:%M} {m.model_name} at {m.n_ctx} tokens, "
            f"KV {m.kv_cache_type}: {format_size(m.measured_ram_bytes)} measured, "
            f"{format_size(m.predicted_ram_bytes)} estimated ({m.ram_error:+.1%}){speed}"
        )
    return lines


def _measurement_json(m: LoadMeasurement) -> dict[str, Any]:
    return {
        "measured_at": m.measured_at.isoformat(),
        "model": m.model_name,
        "n_ctx": m.n_ctx,
        "kv_type": m.kv_cache_type,
        "flash_attn": m.flash_attn,
        "n_gpu_layers": m.n_gpu_layers,
        "estimated_ram_bytes": m.predicted_ram_bytes,
        "measured_ram_bytes": m.measured_ram_bytes,
        "measured_tokens_per_s": m.measured_tokens_per_s,
    }


def _size_or_dash(value: int | None) -> str:
    return format_size(value) if value else "-"


def _estimated(variant: Variant) -> bool:
    return variant.size_basis.startswith("estimated")


def _size(variant: Variant) -> str:
    return ("~" if _estimated(variant) else "") + _size_or_dash(variant.file_size)


def render_table(title: str, profile: HardwareProfile, n_ctx: int, verdicts: list[Verdict]) -> str:
    head = ("", "quant", "file", "GPU mem", "RAM", "verdict", "tok/s", "quality loss", "why")
    rows = [head]
    for v in verdicts:
        q = v.quality
        loss = q.band if q.kld is None else f"{q.band} (KLD {q.kld:g})"
        tps = "-" if v.tokens_per_s is None else f"~{v.tokens_per_s:.0f}"
        rows.append(
            ("*" if v.recommended else "", v.variant.quant, _size(v.variant),
             _size_or_dash(v.gpu_bytes), _size_or_dash(v.ram_bytes), v.label, tps, loss, v.reason)
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = [f"{title} at {n_ctx} tokens of context on {profile.name} ({profile.source})"]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    pick = next((v for v in verdicts if v.recommended), None)
    lines.append("")
    lines.append(
        f"* recommended: {pick.variant.quant} ({pick.label})"
        if pick
        else "nothing fits this machine"
    )
    if pick and pick.estimate:
        plan = replace(pick.estimate.plan, parallel=FIT_PARALLEL)
        extra = parallel_cost_bytes(pick.variant.facts, plan)
        lines.append(
            f"  {FIT_PARALLEL} parallel: +{format_size(extra)} "
            "(KV cache for requests served at once; `engine.parallel`)"
        )
    bases = sorted({v.variant.size_basis for v in verdicts if not _estimated(v.variant)})
    if any(_estimated(v.variant) for v in verdicts):
        bases.append("~ = estimated from parameters × bits per weight")
    memory = sorted({v.estimate.basis for v in verdicts})
    lines.append(f"file sizes: {'; '.join(bases)}")
    lines.append(f"memory: {'; '.join(memory) or HEADER_BASIS}")
    lines.append(f"tok/s: {SPEED_BASIS}")
    if profile.ram_bandwidth_gbs and (profile.ram_bandwidth_source or "").startswith("measured"):
        lines.append(
            f"RAM bandwidth: {profile.ram_bandwidth_gbs:.1f} GB/s, {profile.ram_bandwidth_source}"
        )
    lines.append(f"quality loss: {QUALITY_BASIS}")
    return "\n".join(lines)


def to_json(
    title: str, profile: HardwareProfile, args: argparse.Namespace, verdicts: list[Verdict]
) -> dict[str, Any]:
    # Schema 1 is a published contract: its keys keep their names ("kv_type" is the KV cache
    # type, "cpu_moe_layers" the MoE layers whose experts stay in RAM).
    return {
        "schema": JSON_SCHEMA,
        "model": title,
        "profile": {"name": profile.name, "source": profile.source},
        "n_ctx": args.ctx,
        "kv_type": args.kv_cache_type,
        "goal": args.goal,
        "recommended": next((v.variant.quant for v in verdicts if v.recommended), None),
        "variants": [_variant_json(v) for v in verdicts],
    }


def _variant_json(v: Verdict) -> dict[str, Any]:
    return {
        "quant": v.variant.quant,
        "file_size_bytes": v.variant.file_size,
        "file_size_basis": v.variant.size_basis,
        "verdict": v.kind,
        "label": v.label,
        "reason": v.reason,
        "gpu_bytes": v.gpu_bytes,
        "ram_bytes": v.ram_bytes,
        "gpu_layers": v.gpu_layers,
        "cpu_moe_layers": v.moe_experts_on_cpu_layers,
        "memory_basis": v.estimate.basis,
        "tokens_per_s": None if v.tokens_per_s is None else round(v.tokens_per_s, 1),
        "tokens_per_s_basis": v.speed_basis or None,
        "quality": {
            "band": v.quality.band,
            "kld": v.quality.kld,
            "delta_ppl": v.quality.delta_ppl,
            "basis": v.quality.basis,
        },
        "recommended": v.recommended,
    }


def _layers(share: MemberShare) -> str:
    if not share.n_layers:
        return "output layer" if share.output else "nothing"
    last = share.first_layer + share.n_layers - 1
    return f"layers {share.first_layer}-{last}" + (" + output" if share.output else "")


def _member_name(share: MemberShare) -> str:
    member = share.member
    return "here" if member.role == "here" else member.name


def render_cluster(cluster: Cluster, planned: list[ClusterVerdict]) -> str:
    workers = [m.name.split(" #")[0] for m in cluster.workers]
    kinds = list(dict.fromkeys(workers))
    named = " + ".join(f"{workers.count(n)} × {n}" if workers.count(n) > 1 else n for n in kinds)
    lines = [
        "",
        f"across {len(cluster.members)} machines: {cluster.here.name} + {named}, "
        f"{cluster.link_gbps:g} Gbit/s link",
    ]
    head = ("", "quant", "verdict", "tok/s", "split")
    rows = [head]
    for v in planned:
        plan = v.plan
        tps = "-" if plan.tokens_per_s is None else f"~{plan.tokens_per_s:.0f}"
        split = "; ".join(
            f"{_layers(s)} {_member_name(s)} ({format_size(s.need_bytes)})"
            for s in plan.shares
            if s.n_layers or s.output
        )
        verdict = {"fits": "fits", "tight": "tight", "no_fit": "does not fit"}[plan.kind]
        rows.append(("*" if v.recommended else "", v.variant.quant, verdict, tps, split))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    pick = next((v for v in planned if v.recommended), None)
    lines.append("")
    if pick is None:
        best = planned[-1].plan.text if planned else "no variants"
        lines.append(f"nothing fits the cluster ({best})")
    else:
        lines.append(f"* recommended across the cluster: {pick.variant.quant}, {pick.plan.text}")
    timed = [v for v in planned if v.plan.tokens_per_s is not None] or planned
    if timed:
        lines.append(f"cluster tok/s: {timed[0].plan.speed_basis}")
    lines.append(
        "split: layers in proportion to each machine's free memory (llama.cpp's default); "
        "memory per machine estimated from the model's layers"
    )
    return "\n".join(lines)


def add_cluster_json(
    report: dict[str, Any], cluster: Cluster | None, planned: list[ClusterVerdict]
) -> None:
    """Schema 1's cluster keys: null without ``--cluster``, so the keys are always there."""
    report["cluster"] = None
    if cluster is not None:
        report["cluster"] = {
            "link_gbps": cluster.link_gbps,
            "members": [_member_json(m) for m in cluster.members],
            "recommended": next((v.variant.quant for v in planned if v.recommended), None),
        }
    for variant in report["variants"]:
        variant["cluster"] = None
        variant["split"] = None
    if cluster is None:
        return
    by_quant = {v.variant.quant: v for v in planned}
    for variant in report["variants"]:
        found = by_quant.get(variant["quant"])
        if found is None:
            continue
        plan = found.plan
        variant["cluster"] = {
            "verdict": plan.kind,
            "text": plan.text,
            "tokens_per_s": None if plan.tokens_per_s is None else round(plan.tokens_per_s, 1),
            "tokens_per_s_basis": plan.speed_basis,
            "network_ms_per_token": round(plan.network_s_per_token * 1000, 3),
            "recommended": found.recommended,
        }
        variant["split"] = [_share_json(s) for s in plan.shares]


def _member_json(member: ClusterMember) -> dict[str, Any]:
    return {
        "name": member.name,
        "role": member.role,
        "memory_bytes": member.memory_bytes,
        "memory_basis": member.memory_basis,
        "backend": member.backend,
        "bandwidth_gbs": member.bandwidth_gbs,
        "bandwidth_basis": member.bandwidth_basis,
    }


def _share_json(share: MemberShare) -> dict[str, Any]:
    return {
        "member": share.member.name,
        "role": share.member.role,
        "first_layer": share.first_layer,
        "n_layers": share.n_layers,
        "output_layer": share.output,
        "weights_bytes": share.weights_bytes,
        "kv_bytes": share.kv_bytes,
        "compute_bytes": share.compute_bytes,
        "other_bytes": share.other_bytes,
        "need_bytes": share.need_bytes,
        "memory_bytes": share.member.memory_bytes,
        "fits": share.fits,
    }
