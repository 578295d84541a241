"""Token counts and usage totals: plain values the ledger returns and the arithmetic consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class TokenCounts:
    """Tokens read (prompt, of which some served from the prompt cache) and produced."""

    prompt: int = 0
    cached_prompt: int = 0
    completion: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.prompt + other.prompt,
            self.cached_prompt + other.cached_prompt,
            self.completion + other.completion,
        )

    def __sub__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.prompt - other.prompt,
            self.cached_prompt - other.cached_prompt,
            self.completion - other.completion,
        )

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @property
    def uncached_prompt(self) -> int:
        return self.prompt - self.cached_prompt


@dataclass(frozen=True)
class UsageTotals:
    """The sum over some generations.

    ``measured`` is the share of the tokens whose generations had their energy measured, and
    ``energy_joules`` the energy of exactly that share; the rest is "not measured", never guessed.
    """

    generations: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    measured_generations: int = 0
    measured: TokenCounts = field(default_factory=TokenCounts)
    energy_joules: Decimal = Decimal(0)
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    in_progress: int = 0

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            generations=self.generations + other.generations,
            tokens=self.tokens + other.tokens,
            measured_generations=self.measured_generations + other.measured_generations,
            measured=self.measured + other.measured,
            energy_joules=self.energy_joules + other.energy_joules,
            prompt_seconds=self.prompt_seconds + other.prompt_seconds,
            decode_seconds=self.decode_seconds + other.decode_seconds,
            in_progress=self.in_progress + other.in_progress,
        )

    @property
    def unmeasured(self) -> TokenCounts:
        return self.tokens - self.measured

    @property
    def unmeasured_generations(self) -> int:
        return self.generations - self.measured_generations
