"""A stand-in for the pynvml module that answers like the real API (this machine has no GPU)."""

from __future__ import annotations

from collections.abc import Iterator

# NVML return codes, as in nvml.h.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12


class FakeNvml:
    """Answers like the pynvml module: counters in millijoules, NVMLError carrying a code."""

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(value)
            self.value = value

    def __init__(self, counters: list[Iterator[int] | None], library: bool = True) -> None:
        self._counters = counters
        self._library = library
        self.initialised = 0

    def nvmlInit(self) -> None:
        if not self._library:
            raise self.NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self._counters)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        counter = self._counters[handle]
        if counter is None:  # pre-Volta GPUs have no energy counter
            raise self.NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return next(counter)
