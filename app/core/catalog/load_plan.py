"""Planning the load of one GGUF file: its variant, the recommender's verdict and each choice's fit.

The Load dialog, ``homefire fit`` on a file and the recommender all start from ``variant_for_file``
and judge with the same ``Machine``, so the verdict the dialog pre-fills and the one it shows
for the user's own choices come from one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import GpuBackend, ModelFacts
from app.core.catalog.fit import LoadFit, Machine, judge_load
from app.core.catalog.gguf_header import read_local_model
from app.core.catalog.quants import quant_from_filename
from app.core.catalog.recommend import Variant, Verdict, recommend
from app.core.hardware.profile import HardwareProfile
from app.core.load_options import LoadOptions


@dataclass(frozen=True)
class FileVariant:
    """A local GGUF as the recommender sees it, with what its header says about it."""

    name: str  # the header's general.name, else the file name
    variant: Variant
    n_ctx_train: int | None


def variant_for_file(path: Path, quant: str | None = None) -> FileVariant:
    """Read the header of ``path`` (every part of a split model) into a variant.

    ``quant`` is what the library already knows (a Hub listing); else the header's file type,
    else the file name.
    """
    header = read_local_model(path)
    quant = quant or header.quant or quant_from_filename(path.name) or "unknown"
    size = header.file_size or path.stat().st_size
    facts = ModelFacts.from_header(header)
    variant = Variant(quant, facts, size, "file size on disk", (str(path),))
    return FileVariant(header.name or path.name, variant, header.context_length)


@dataclass(frozen=True)
class LoadFacts:
    """What the Load dialog needs about a file on a machine, gathered off the GUI thread."""

    path: Path  # the file llama.cpp will open (the starter model is joined first)
    file: FileVariant
    machine: Machine  # what the profile offers, as the recommender judged it
    verdict: Verdict  # the recommender's view of this file on this machine
    correction: Correction | None  # what this machine's own loads taught the estimator

    @property
    def facts(self) -> ModelFacts:
        return self.file.variant.facts

    @property
    def n_ctx_train(self) -> int | None:
        return self.file.n_ctx_train

    @property
    def gpu_backend(self) -> GpuBackend | None:
        """The backend layers go to, the same one the recommender planned with."""
        return self.machine.backend

    @property
    def suggested(self) -> LoadOptions:
        """The recommender's verdict as options: where the Load dialog starts."""
        return verdict_options(self.verdict, self.path)

    def judge(self, options: LoadOptions) -> LoadFit:
        """The verdict on the user's own choices, by the rule the recommender used."""
        return judge_load(self.machine, self.facts, options, self.correction)


def plan_load(
    path: Path,
    profile: HardwareProfile,
    n_ctx: int,
    correction: Correction | None,
    quant: str | None = None,
) -> LoadFacts:
    """Blocking (reads the header): the recommender's verdict on ``path`` at up to ``n_ctx``
    tokens, capped at the context the model was trained for."""
    file = variant_for_file(path, quant)
    train = file.n_ctx_train
    (verdict,) = recommend(
        profile, [file.variant], min(n_ctx, train or n_ctx), correction=correction
    )
    return LoadFacts(path, file, Machine.of(profile), verdict, correction)


def verdict_options(verdict: Verdict, path: Path) -> LoadOptions:
    """The load a verdict planned: every layer (-1, the output layer too) when it fits on the
    GPU, else the layers it counted, at the context and KV cache type it was judged at."""
    plan = verdict.estimate.plan
    every_layer = verdict.kind in ("gpu", "moe_offload")
    return LoadOptions(
        path,
        n_ctx=plan.n_ctx,
        n_gpu_layers=-1 if every_layer else verdict.gpu_layers,
        flash_attn=plan.flash_attn,
        kv_cache_type=plan.kv_cache_type,
        moe_experts_on_cpu_layers=verdict.moe_experts_on_cpu_layers,
    )
