"""The body of llama.cpp's ``/infill``, as llama.vscode and llama.vim send it (unknown fields,
such as ``n_indent`` and ``lora``, ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.engine.request import ContextFile
from app.core.server.schemas import SamplingFields

# llama.vim and llama.vscode keep 16 chunks by default (their ring_n_chunks); a generous multiple
# leaves room for larger settings while bounding the per-chunk work.
MAX_CONTEXT_FILES = 256
MAX_FILENAME_CHARS = 1024


class InfillChunk(BaseModel):
    """One ``input_extra`` entry (llama.vim adds a ``time``, ignored)."""

    model_config = ConfigDict(extra="ignore")

    filename: str = Field(default="", max_length=MAX_FILENAME_CHARS)
    text: str = ""

    def to_file(self) -> ContextFile:
        return ContextFile(filename=self.filename, text=self.text)


class InfillBody(SamplingFields):
    model: str | None = None
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[InfillChunk] = Field(default_factory=list, max_length=MAX_CONTEXT_FILES)
    # The start of the cursor's line: the text right before the cursor, after the prefix.
    prompt: str = ""
    # llama.cpp's: -1 until a stop or the context's end; 0 reads the prompt only (a warm-up).
    n_predict: int = Field(default=-1, ge=-1)
    stream: bool = False
    # Once this long has passed since the first token, the reply ends at its next line break.
    t_max_predict_ms: int | None = Field(default=None, ge=0)
    # Accepted for llama.cpp's clients; the prompt is always read whole and prompts are always
    # cached per slot, and the sampler order is Homefire's own.
    t_max_prompt_ms: int | None = None
    cache_prompt: bool = True
    samplers: Any = None
    # Only these fields of the answer, "timings/prompt_n" naming a nested one (llama.vim).
    response_fields: list[str] | None = Field(default=None, max_length=64)

    def max_tokens(self) -> int | None:
        return None if self.n_predict < 0 else self.n_predict

    def line_deadline_s(self) -> float | None:
        return None if not self.t_max_predict_ms else self.t_max_predict_ms / 1000

    def context_files(self) -> tuple[ContextFile, ...]:
        return tuple(chunk.to_file() for chunk in self.input_extra)
