"""Output grammars are bounded before llama.cpp's recursive parser sees them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from app.core.engine.backend import grammar_from_json_schema
from app.core.engine.engine import Engine
from app.core.engine.grammar_limits import (
    MAX_GRAMMAR_BYTES,
    MAX_GRAMMAR_DEPTH,
    MAX_GROUP_REPETITION,
    MAX_PATTERN_DEPTH,
    MAX_REPETITION,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_VALUES,
    check_grammar,
    check_schema,
)
from app.core.engine.request import ChatMessage, GenerationRequest
from app.core.errors import GrammarRefused, UnsupportedRequest


def nested_items(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "string", "maxLength": 1_000_000}, "maxLength"),
        ({"type": "string", "minLength": MAX_REPETITION + 1}, "minLength"),
        (
            {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 10**9}}},
            "properties.tags.maxItems",
        ),
        ({"type": "object", "maxProperties": 5000}, "maxProperties"),
        ({"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 9999}]}, "anyOf.1.maxLength"),
        ({"$defs": {"x": {"type": "string", "maxLength": 9999}}}, "$defs.x.maxLength"),
        ({"type": "string", "maxLength": "many"}, "maxLength"),
        ({"type": "string", "maxLength": -1}, "maxLength"),
        ({"type": "string", "pattern": "^a{1000000}$"}, "pattern"),
        ({"type": "string", "pattern": "^(a|b){2,5000}$"}, "pattern"),
        ({"type": "string", "pattern": "^(a?){0,65}$"}, "pattern"),
        ({"type": "string", "pattern": "^((a?){0,16}){0,16}$"}, "pattern"),
        ({"type": "string", "pattern": "^((a?){0,64})*$"}, "pattern"),
        ({"type": "string", "pattern": "^(((a)+)+)+$"}, "pattern"),
        ({"type": "string", "pattern": "^(a$"}, "pattern"),
        ({"type": "string", "pattern": 7}, "pattern"),
        (
            {"type": "string", "pattern": "^" + "(" * 100 + "a" + ")" * 100 + "$"},
            "pattern",
        ),
        ({"type": "object", "patternProperties": {"^(x$": {}}}, "patternProperties.^(x$"),
    ],
)
def test_oversized_or_invalid_keywords_are_refused_by_name(
    schema: dict[str, Any], field: str
) -> None:
    with pytest.raises(GrammarRefused) as caught:
        check_schema(schema)
    assert caught.value.field == field
    assert field in caught.value.user_message


def test_the_refusal_names_the_limit() -> None:
    with pytest.raises(GrammarRefused, match=str(MAX_REPETITION)):
        check_schema({"type": "string", "maxLength": 1_000_000})


def test_a_property_named_like_a_keyword_is_a_name_not_a_bound() -> None:
    check_schema(
        {"type": "object", "properties": {"maxLength": {"type": "integer"}, "pattern": {}}}
    )
    check_schema({"enum": [{"maxLength": 10**9, "pattern": "(("}]})


def test_nesting_beyond_the_limit_is_refused_wherever_it_is() -> None:
    check_schema(nested_items(MAX_SCHEMA_DEPTH // 2 - 1))
    with pytest.raises(GrammarRefused, match="deep"):
        check_schema(nested_items(MAX_SCHEMA_DEPTH))
    deep_data: Any = 1
    for _ in range(10_000):
        deep_data = [deep_data]
    with pytest.raises(GrammarRefused, match="deep"):
        check_schema({"const": deep_data})


def test_a_huge_schema_is_refused_by_its_size() -> None:
    schema = {"enum": list(range(MAX_SCHEMA_VALUES + 1))}
    with pytest.raises(GrammarRefused, match=str(MAX_SCHEMA_VALUES)):
        check_schema(schema)


def test_generous_real_schemas_convert() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_REPETITION},
            "tags": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[a-z]{1,30}$"},
                "maxItems": 20,
            },
            "code": {"type": "string", "pattern": r"^([A-Z]{3})-(\d{4})$"},
        },
        "required": ["title", "tags"],
    }
    gbnf = grammar_from_json_schema(schema)
    assert "root ::=" in gbnf


@pytest.mark.parametrize(
    "gbnf",
    [
        "root ::= " + "(" * (MAX_GRAMMAR_DEPTH + 1) + '"a"' + ")" * (MAX_GRAMMAR_DEPTH + 1),
        'root ::= "a"{0,100000}',
        'root ::= "' + "a" * MAX_GRAMMAR_BYTES + '"',
    ],
)
def test_grammars_over_the_limits_are_refused(gbnf: str) -> None:
    with pytest.raises(GrammarRefused):
        check_grammar(gbnf)


def test_brackets_inside_literals_classes_and_comments_are_not_structure() -> None:
    deep = MAX_GRAMMAR_DEPTH + 5
    check_grammar(
        "# " + "(" * deep + "\n"
        'root ::= "' + "(" * deep + '" [(((\\]] "{99999999}" x\n'
        'x ::= "\\"(((" [^(]'
    )


@pytest.mark.parametrize(
    "schema",
    [
        # the converter's slowest shape: many optional properties (quadratic), within the size
        {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(3000)}},
        {"anyOf": [{"type": "string", "maxLength": MAX_REPETITION} for _ in range(3000)]},
        {"enum": [f"v{i}" for i in range(MAX_SCHEMA_VALUES - 10)]},
    ],
)
def test_the_largest_admitted_schemas_convert_or_are_refused_quickly(schema: object) -> None:
    started = time.monotonic()
    with contextlib.suppress(UnsupportedRequest):
        grammar_from_json_schema(schema)
    assert time.monotonic() - started < 30  # a hang guard: these take well under a second


# Parses a grammar on a thread with a small stack, then feeds it a document token by token (what
# sampling does: each accepted token advances the grammar's stacks, recursively too).
STACK_PROBE = textwrap.dedent(
    """
    import json, resource, sys, threading
    import llama_cpp

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    model_path = sys.argv[1]
    grammar, document = json.load(sys.stdin)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(model_path.encode(), params)
    vocab = llama_cpp.llama_model_get_vocab(model)
    # One token per character (the tokenizer would add SentencePiece's leading space).
    ids = {}
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        ids.setdefault(llama_cpp.llama_vocab_get_text(vocab, token).decode(), token)
    tokens = [ids[c] for c in document]
    done = []

    def walk():
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if sampler:
            for token in tokens:
                llama_cpp.llama_sampler_accept(sampler, token)
        done.append("walked" if sampler else "refused")

    threading.stack_size(512 * 1024)
    thread = threading.Thread(target=walk)
    thread.start()
    thread.join()
    print(*done)
    """
)


def _walk_on_a_small_stack(
    model: Path, grammar: str, document: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STACK_PROBE, str(model)],
        input=json.dumps([grammar, document]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _deepest(depth: int) -> str:
    return "root ::= " + "(" * depth + '"a"' + ")" * depth


BOUNDED_STRING = '"' + "a" * MAX_REPETITION + '"'


@pytest.mark.parametrize(
    ("grammar", "document"),
    [
        (_deepest(MAX_GRAMMAR_DEPTH), "a"),
        (grammar_from_json_schema({"type": "string", "maxLength": MAX_REPETITION}), BOUNDED_STRING),
        (
            grammar_from_json_schema(
                {"type": "string", "pattern": f"^(a?){{0,{MAX_GROUP_REPETITION}}}$"}
            ),
            '"' + "a" * MAX_GROUP_REPETITION + '"',
        ),
        (
            grammar_from_json_schema({"type": "string", "pattern": "^((a?){0,8}){0,8}$"}),
            '"' + "a" * 64 + '"',
        ),
        (
            grammar_from_json_schema(
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^(a?)$"},
                    "maxItems": MAX_REPETITION,
                }
            ),
            "[" + ",".join(['"a"'] * MAX_REPETITION) + "]",
        ),
    ],
    ids=["deepest-groups", "max-length", "repeated-group", "nested-repeated-groups", "max-items"],
)
def test_the_deepest_admitted_grammars_parse_and_sample_on_a_512_kib_thread_stack(
    tiny_model: Path, grammar: str, document: str
) -> None:
    check_grammar(grammar)
    admitted = _walk_on_a_small_stack(tiny_model, grammar, document)
    assert admitted.returncode == 0, admitted.stderr[-2000:]
    assert admitted.stdout.strip() == "walked"


def test_an_unbounded_grammar_would_crash_that_thread(tiny_model: Path) -> None:
    # The danger is real: what the issue's schema produced kills the process on the same stack.
    unbounded = _walk_on_a_small_stack(tiny_model, _deepest(200_000), "a")
    assert unbounded.returncode != 0


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[a-z0-9-]{1,63}$",
        r"^([a-z0-9-]+\.)+[a-z]{2,}$",
        r"^(\d{1,3}\.){3}\d{1,3}$",
        r"^\+?[0-9 ()-]{7,20}$",
        r"^[A-Z]{2}[0-9]{2}( ?[A-Z0-9]{4}){2,7}( ?[A-Z0-9]{1,3})?$",
        r"^(\(a\)|[(]){0,64}$",
    ],
)
def test_real_world_patterns_are_admitted(pattern: str) -> None:
    check_schema({"type": "string", "pattern": pattern})


def test_pattern_depth_limit_leaves_room_for_real_regexes() -> None:
    regex = "^" + "(a" * MAX_PATTERN_DEPTH + ")" * MAX_PATTERN_DEPTH + "$"
    check_schema({"type": "string", "pattern": regex})


def test_the_engine_measures_any_grammar_before_llama_cpp_parses_it(tiny_engine: Engine) -> None:
    ask = (ChatMessage(role="user", content="Hi"),)
    for grammar in (_deepest(200_000), 'root ::= "a"{0,100000}'):
        with pytest.raises(GrammarRefused):
            tiny_engine.generate(GenerationRequest(messages=ask, grammar=grammar)).result()
    # the engine lives on and still honours a grammar that fits
    result = tiny_engine.generate(
        GenerationRequest(messages=ask, grammar=_deepest(MAX_GRAMMAR_DEPTH), max_tokens=4)
    ).result()
    assert result.text == "a"
