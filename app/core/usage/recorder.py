"""Feed the ledger from the engine: an engine ``GenerationObserver`` that also meters energy.

The engine calls it on its own thread around every generation, chat and endpoint alike:
``engine.add_observer(UsageRecorder(ledger, meter))``. The request says where it came from
(``source``, ``client``); the result says what it produced. A generation that ends in an
error keeps the tokens it had produced; a cancelled one (Stop, client gone) likewise. A request
for no tokens at all (a prompt-cache warm-up) is not recorded.
"""

from __future__ import annotations

import logging
import threading

from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.errors import Cancelled
from app.core.usage.energy import EnergyMeter, EnergyReading
from app.core.usage.ledger import UsageLedger

log = logging.getLogger(__name__)


class UsageRecorder:
    def __init__(self, ledger: UsageLedger, meter: EnergyMeter | None = None) -> None:
        self._ledger = ledger
        self._meter = meter
        self._lock = threading.Lock()
        # engine job id -> (ledger generation id, energy reading at the start)
        self._jobs: dict[int, tuple[int, EnergyReading | None]] = {}

    def generation_started(
        self,
        job_id: int,
        request: GenerationRequest,
        model_id: str,
        prompt_tokens: int,
        cached_prompt_tokens: int,
    ) -> None:
        if request.max_tokens == 0:
            # A cache warm-up (llama.vscode and llama.vim send one between keystrokes): no paid
            # API would ever receive it, so it is not counted as a saving.
            return
        generation_id = self._ledger.start(
            source=request.source,
            client=request.client,
            model=model_id,
            prompt_tokens=prompt_tokens,
            cached_prompt_tokens=cached_prompt_tokens,
        )
        reading = None if self._meter is None else self._meter.start()
        with self._lock:
            self._jobs[job_id] = (generation_id, reading)

    def generation_progressed(self, job_id: int, completion_tokens: int) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            self._ledger.progress(job[0], completion_tokens)

    def generation_finished(
        self, job_id: int, result: GenerationResult | None, error: BaseException | None
    ) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return  # its start was never recorded (the ledger failed then); nothing to close
        generation_id, reading = job
        energy = None if self._meter is None else self._meter.joules_since(reading)
        if result is not None:
            self._ledger.finish(
                generation_id,
                finish_reason=result.finish_reason,
                completion_tokens=result.completion_tokens,
                prompt_tokens=result.prompt_tokens,
                cached_prompt_tokens=result.cached_prompt_tokens,
                prompt_seconds=result.prompt_s,
                decode_seconds=result.decode_s,
                energy_joules=energy,
            )
            return
        reason = "cancelled" if isinstance(error, Cancelled) else "error"
        log.debug("generation %d ended with %s: %s", job_id, reason, error)
        self._ledger.finish(generation_id, finish_reason=reason, energy_joules=energy)
