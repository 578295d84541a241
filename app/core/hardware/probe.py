"""What one probe returns: a value when it could read the part, and the parts it could not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from app.core.hardware.profile import AbsentPart

T = TypeVar("T")


@dataclass(frozen=True)
class ProbeResult(Generic[T]):
    value: T | None
    absent: tuple[AbsentPart, ...] = ()

    @classmethod
    def missing(cls, part: str, reason: str) -> ProbeResult[T]:
        return cls(None, (AbsentPart(part, reason),))
