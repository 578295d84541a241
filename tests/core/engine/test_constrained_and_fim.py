"""Engine features the endpoint builds on: grammars, FIM prompts, embeddings, template probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.engine.backend import grammar_from_json_schema
from app.core.engine.engine import Engine
from app.core.engine.request import ChatMessage, GenerationRequest
from app.core.errors import UnsupportedRequest
from app.core.load_options import LoadOptions

HELLO = (ChatMessage(role="user", content="Hello"),)


@pytest.fixture
def coder_engine(engine: Engine, tmp_path: Path) -> Engine:
    from tests.server.tiny_coder import write_tiny_coder

    model = write_tiny_coder(tmp_path / "tiny-coder.gguf")
    engine.load(LoadOptions(model_path=model, n_ctx=512, seed=1)).result()
    return engine


def test_load_probes_tools_fim_and_thinking(coder_engine: Engine) -> None:
    info = coder_engine.model
    assert info is not None
    assert info.supports_tools
    assert info.supports_fim
    assert not info.opens_thinking


def test_a_plain_chatml_model_has_no_tools_or_fim(tiny_engine: Engine) -> None:
    info = tiny_engine.model
    assert info is not None
    assert not info.supports_tools
    assert not info.supports_fim


def test_a_grammar_constrains_every_token(coder_engine: Engine) -> None:
    grammar = grammar_from_json_schema(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    for seed in (1, 2, 3):
        from app.core.engine.request import Sampling

        result = coder_engine.generate(
            GenerationRequest(
                messages=HELLO, grammar=grammar, max_tokens=60, sampling=Sampling(seed=seed)
            )
        ).result()
        assert result.finish_reason == "stop"
        assert isinstance(json.loads(result.text)["n"], int)


def test_strings_under_a_schema_are_strict_json_without_control_characters(
    coder_engine: Engine,
) -> None:
    # The tiny coder's byte tokens make raw control characters likely wherever they are allowed.
    grammar = grammar_from_json_schema(
        {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
    )
    from app.core.engine.request import Sampling

    for seed in (1, 2, 3, 4):
        result = coder_engine.generate(
            GenerationRequest(
                messages=HELLO, grammar=grammar, max_tokens=120, sampling=Sampling(seed=seed)
            )
        ).result()
        if result.finish_reason == "stop":
            json.loads(result.text)  # strict: raw control characters inside strings fail
        assert not any(ord(c) < 0x20 for c in result.text)  # the grammar's spaces are " " only


def test_an_unparsable_grammar_is_refused_not_crashed(coder_engine: Engine) -> None:
    with pytest.raises(UnsupportedRequest):
        coder_engine.generate(
            GenerationRequest(messages=HELLO, grammar="root ::= (", max_tokens=3)
        ).result()
    # the engine keeps serving
    assert coder_engine.generate(GenerationRequest(prompt="x", max_tokens=2)).result()


def test_fim_prompt_is_bos_and_three_fim_tokens_around_the_text(coder_engine: Engine) -> None:
    def count(request: GenerationRequest) -> int:
        return coder_engine.count_tokens(request).result()

    fim = count(GenerationRequest(prompt="x = 1", suffix="<|fim_middle|>"))
    prefix = count(GenerationRequest(prompt="x = 1")) - 1  # without BOS
    suffix = count(GenerationRequest(prompt="<|fim_middle|>")) - 1
    # The suffix's FIM-token text stays text: it costs its characters, not one token.
    assert suffix > 3
    assert fim == 1 + 3 + prefix + suffix


def test_embeddings_come_from_a_second_context_and_leave_generation_alone(
    coder_engine: Engine,
) -> None:
    before = coder_engine.generate(
        GenerationRequest(prompt="Hello", max_tokens=6, sampling=_seeded())
    ).result()
    result = coder_engine.embed(["Hello world", "Hello world", "the a"]).result()
    assert result.vectors[0] == result.vectors[1]
    assert result.vectors[0] != result.vectors[2]
    after = coder_engine.generate(
        GenerationRequest(prompt="Hello", max_tokens=6, sampling=_seeded())
    ).result()
    assert after.text == before.text


def _seeded() -> object:
    from app.core.engine.request import Sampling

    return Sampling(seed=9, temperature=0.0)
