"""Embeddings for both dialects: bounded inputs and tokens, one engine job per text.

Each text is its own engine job, so a client that leaves is noticed between texts (the work
stops there), other requests in the queue get their turn between texts, and the token count
is checked as it grows. One text is bounded by the embedding context, so the work done past
the cap is at most one text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial

from fastapi import Request

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.result import EmbeddingResult
from app.core.server.errors import ApiError
from app.core.server.generation_stream import engine_job_or_disconnect
from app.core.storage.settings import ServerLimits


async def embed_texts(request: Request, engine: Engine, texts: Sequence[str]) -> EmbeddingResult:
    limits: ServerLimits = request.app.state.limits
    if len(texts) > limits.max_embedding_inputs:
        raise ApiError(
            400,
            f"{len(texts)} inputs to embed; at most {limits.max_embedding_inputs} per request",
            param="input",
            code="too_many_inputs",
        )
    started = time.monotonic()
    vectors: list[list[float]] = []
    tokens = 0
    model_id = ""
    for text in texts:
        one = await engine_job_or_disconnect(partial(_embed_one, engine, text), request)
        vectors.extend(one.vectors)
        tokens += one.prompt_tokens
        model_id = one.model_id
        if tokens > limits.max_embedding_tokens:
            raise ApiError(
                400,
                f"the inputs to embed have more than {limits.max_embedding_tokens} tokens in all; "
                "send them in smaller requests",
                param="input",
                code="too_many_tokens",
            )
    return EmbeddingResult(
        vectors=vectors,
        model_id=model_id,
        prompt_tokens=tokens,
        duration_s=time.monotonic() - started,
    )


def _embed_one(engine: Engine, text: str, cancel: CancelToken) -> Future[EmbeddingResult]:
    return engine.embed([text], cancel=cancel)
