"""What the Load dialog needs about a model and the machine, gathered off the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import GpuBackend, LoadPlan, MemoryEstimate, ModelFacts, estimate
from app.core.catalog.gguf_header import read_local_model
from app.core.catalog.quants import quant_from_filename
from app.core.catalog.recommend import Variant, Verdict, recommend
from app.core.hardware.profile import HardwareProfile
from app.core.library.model import LibraryModel
from app.core.services import AppServices


@dataclass(frozen=True)
class LoadFacts:
    model: LibraryModel
    path: Path  # the file llama.cpp will open (the starter model is joined first)
    facts: ModelFacts
    n_ctx_train: int | None
    profile: HardwareProfile
    verdict: Verdict  # the recommender's view of this file on this machine
    correction: Correction | None  # what this machine's own loads taught the estimator

    @property
    def gpu_backend(self) -> GpuBackend | None:
        for gpu in self.profile.gpus:
            if gpu.usable_by_build and gpu.backend and gpu.backend != "cpu":
                return gpu.backend
        return None

    def estimate(self, plan: LoadPlan) -> MemoryEstimate:
        factor = self.correction.factor if self.correction else 1.0
        basis = self.correction.basis if self.correction else None
        return estimate(self.facts, plan, factor, basis)


def gather(
    services: AppServices, model: LibraryModel, profile: HardwareProfile, n_ctx: int
) -> LoadFacts:
    """Blocking: prepares the file, reads its header and asks the recommender (a worker runs it)."""
    path = services.library.local_path(model)
    header = read_local_model(path)
    facts = ModelFacts.from_header(header)
    quant = model.quant or header.quant or quant_from_filename(path.name) or "unknown"
    variant = Variant(quant, facts, model.size_bytes, "file size on disk", (str(path),))
    correction = services.fit_feedback.calibration.correction()
    train = header.context_length
    (verdict,) = recommend(profile, [variant], min(n_ctx, train or n_ctx), correction=correction)
    return LoadFacts(model, path, facts, train, profile, verdict, correction)
