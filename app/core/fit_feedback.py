"""After each real load and generation, compare the fit estimate with what happened (issue: closed loop).

A ``GenerationObserver`` on the engine and a hook after loads: measured resident memory and decode
speed go into ``FitCalibration`` beside the formula's prediction, so later estimates on this
machine carry the learned correction.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from app.core.catalog.calibration import FitCalibration, LoadMeasurement
from app.core.catalog.estimator import LoadPlan, ModelFacts, estimate
from app.core.catalog.gguf_header import read_local_model
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult, ModelInfo
from app.core.errors import AppError
from app.core.load_options import LoadOptions

log = logging.getLogger(__name__)

# Replies shorter than this say more about start-up than about the decode rate.
MIN_TOKENS_FOR_SPEED = 16


class FitFeedback:
    def __init__(self, calibration: FitCalibration) -> None:
        self._calibration = calibration
        self._lock = threading.Lock()
        self._load_id: int | None = None

    @property
    def calibration(self) -> FitCalibration:
        return self._calibration

    def last_load(self) -> LoadMeasurement | None:
        """The measurement of the model loaded last, when it could be estimated."""
        with self._lock:
            load_id = self._load_id
        if load_id is None:
            return None
        latest = self._calibration.measurements(limit=1)
        return latest[0] if latest and latest[0].id == load_id else None

    def model_loaded(self, options: LoadOptions, info: ModelInfo) -> None:
        """Record predicted vs measured memory of a load that just finished."""
        with self._lock:
            self._load_id = None
        if info.rss_growth_bytes is None or info.rss_growth_bytes <= 0:
            return
        try:
            facts = ModelFacts.from_header(read_local_model(info.path))
            # No hardware profile here to name a GPU backend: this is the all-in-RAM prediction.
            plan = replace(
                LoadPlan.from_options(replace(options, n_ctx=info.n_ctx), gpu_backend=None),
                parallel=info.parallel,  # every slot's KV cache is allocated at load
            )
            predicted = estimate(facts, plan).ram_after_load_bytes
            load_id = self._calibration.record_load(
                model_path=info.path,
                model_name=info.model_id,
                n_ctx=info.n_ctx,
                kv_cache_type=options.kv_cache_type,
                flash_attn=options.flash_attn,
                n_gpu_layers=options.n_gpu_layers,
                predicted_ram_bytes=predicted,
                measured_ram_bytes=info.rss_growth_bytes,
            )
        except AppError as exc:  # a header we cannot estimate from: nothing to learn
            log.info("no fit feedback for %s: %s", info.path.name, exc.user_message)
            return
        with self._lock:
            self._load_id = load_id

    # -- GenerationObserver --------------------------------------------------------------------

    def generation_started(
        self,
        job_id: int,
        request: GenerationRequest,
        model_id: str,
        prompt_tokens: int,
        cached_prompt_tokens: int,
    ) -> None:
        pass

    def generation_progressed(self, job_id: int, completion_tokens: int) -> None:
        pass

    def generation_finished(
        self, job_id: int, result: GenerationResult | None, error: BaseException | None
    ) -> None:
        with self._lock:
            load_id = self._load_id
        if result is None or load_id is None or result.completion_tokens < MIN_TOKENS_FOR_SPEED:
            return
        if result.max_concurrent > 1:  # sharing its steps with others: not the model's own rate
            return
        rate = result.decode_tokens_per_s
        if rate is not None:
            self._calibration.record_speed(load_id, rate, None)
