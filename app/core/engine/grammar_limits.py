"""Bounds on what becomes an output grammar, checked before llama.cpp parses it.

llama.cpp's grammar parser recurses twice (``parse_alternates`` -> ``parse_sequence``) per nested
group, and llama-cpp-python's JSON-schema converter writes a bounded repetition (``maxLength``,
``maxItems``, a regex ``{m,n}``) as one nested optional group per optional item. So a schema's
``"maxLength": 1000000`` becomes a million-deep recursion in C++ that overflows the thread's stack
and ends the whole process. Schemas are bounded where the client wrote them (the error names the
keyword), and the grammar the converter produced is measured again before llama.cpp sees it, which
also covers grammars that did not come from a schema.

The limits are generous for real use and far below what is dangerous. llama.cpp's parser takes
about 450 bytes of C stack per nesting level (measured on x86-64 Linux), so the deepest grammar
admitted here needs about 300 KiB: within the smallest default thread stack we run on (macOS's
512 KiB; Linux's is usually 8 MiB, and CPython sizes its threads on macOS larger still).
``tests/core/engine/test_grammar_limits.py`` parses it on a 512 KiB thread. Converting the largest
admitted schema takes milliseconds.
"""

from __future__ import annotations

import re

from app.core.errors import GrammarRefused

# The largest min/max bound on a repetition (string length, array items, object properties, a
# regex's {m,n}). A title, a name or a list of tags fits; an essay should be left unbounded
# (the reply's max_tokens bounds it anyway).
MAX_REPETITION = 500
# Nesting of objects and arrays in a schema (a schema level is about two of these: the
# ``properties`` map and the property's schema), and of groups in a regex ``pattern``.
MAX_SCHEMA_DEPTH = 64
MAX_PATTERN_DEPTH = 32
# A repeated group in a regex, times the repetitions inside it and around it (see
# _check_regex_shape for why groups get a smaller bound than single characters).
MAX_GROUP_REPETITION = 64
UNBOUNDED_GROUP_FACTOR = 8
MAX_PATTERN_CHARS = 2000
# Every value in a schema, counted: bounds the converter's work (it is quadratic in the number of
# optional properties of one object).
MAX_SCHEMA_VALUES = 10_000
# The produced GBNF text and its group nesting. The converter nests one group per optional
# repetition, so the depth allows the largest repetition plus room for the structure around it.
MAX_GRAMMAR_BYTES = 256 * 1024
MAX_GRAMMAR_DEPTH = MAX_REPETITION + 2 * MAX_PATTERN_DEPTH + MAX_SCHEMA_DEPTH

_REPETITION_KEYWORDS = frozenset(
    {
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minContains",
        "maxContains",
    }
)
# Keywords whose value is one schema, a list of schemas, or a map of names to schemas; any other
# keyword's value is data (enum, const, default...) and only counts towards size and depth.
_SUBSCHEMA = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
    }
)
_SUBSCHEMA_LIST = frozenset({"anyOf", "oneOf", "allOf", "prefixItems", "items"})
_SUBSCHEMA_MAP = frozenset({"properties", "patternProperties", "$defs", "definitions"})

_QUANTIFIER = re.compile(r"\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path)


def check_schema(schema: object) -> None:
    """Refuse a schema whose grammar would be too large or too deep; raise ``GrammarRefused``
    naming the offending keyword's path (dotted, relative to the schema)."""
    # An explicit stack, not recursion: the schema's depth is what is being bounded.
    todo: list[tuple[object, tuple[str, ...], int, str]] = [(schema, (), 0, "schema")]
    seen = 0
    while todo:
        node, path, depth, kind = todo.pop()
        seen += 1
        if seen > MAX_SCHEMA_VALUES:
            raise GrammarRefused("", f"the schema has more than {MAX_SCHEMA_VALUES} values")
        if depth > MAX_SCHEMA_DEPTH:
            raise GrammarRefused(
                _where(path),
                f"the schema nests objects and arrays more than {MAX_SCHEMA_DEPTH} deep",
            )
        if isinstance(node, list):
            child = "schema" if kind == "schemas" else "data"
            todo.extend((v, (*path, str(i)), depth + 1, child) for i, v in enumerate(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                todo.append((value, (*path, str(key)), depth + 1, _kind(kind, str(key), value)))
            if kind == "schema":
                _check_keywords(node, path)


def _kind(parent: str, key: str, value: object) -> str:
    if parent == "names":
        return "schema"
    if parent != "schema":
        return "data"
    if key in _SUBSCHEMA_MAP:
        return "names"
    if key in _SUBSCHEMA_LIST and isinstance(value, list):
        return "schemas"
    return "schema" if key in _SUBSCHEMA else "data"


def _check_keywords(node: dict[str, object], path: tuple[str, ...]) -> None:
    for key in _REPETITION_KEYWORDS.intersection(node):
        value = node[key]
        where = _where((*path, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GrammarRefused(where, f"must be a non-negative integer, not {value!r}")
        if value > MAX_REPETITION:
            raise GrammarRefused(where, f"{value} is over the limit of {MAX_REPETITION}")
    pattern = node.get("pattern")
    if pattern is not None:
        check_pattern(pattern, _where((*path, "pattern")))
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict):
        for key in patterns:
            check_pattern(key, _where((*path, "patternProperties", str(key))))


def check_pattern(pattern: object, where: str) -> None:
    """A regex ``pattern`` that is valid, not too deep and has no huge ``{m,n}``."""
    if not isinstance(pattern, str):
        raise GrammarRefused(where, "a pattern must be a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise GrammarRefused(
            where, f"the pattern is over the limit of {MAX_PATTERN_CHARS} characters"
        )
    # Measured before Python's own regex parser sees it: that parser recurses per group too.
    _check_regex_shape(pattern, where)
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise GrammarRefused(where, f"{pattern!r} is not a valid regex: {exc}") from exc


def _check_regex_shape(pattern: str, where: str) -> None:
    """Refuse a regex nested too deep, or whose bounded repetitions are too large.

    A repeated single character or class costs the grammar one group per optional item. A
    repeated group costs more: the converter nests the group's copies, every way the text can be
    split between them is a separate grammar stack, and nested repetitions multiply (measured:
    ``(a?){0,320}`` takes llama.cpp 25 s to accept 320 characters, ``((a?){0,16}){0,16}`` 11 s).
    So repeated groups are bounded by the product of their counts, an unbounded ``*``, ``+`` or
    ``{m,}`` on a group counting as ``UNBOUNDED_GROUP_FACTOR`` (its cost per character is then
    constant, but grows with what it repeats: ``((a?){0,64})*`` costs 20 ms per character).

    Hand-written because the regex parsers at hand (Python's, the converter's) are what this
    guards: both recurse once per group, and neither reports depth or counts.
    """
    # Per open group (and the top level): the largest repetition product inside it so far.
    inner = [1]
    group_product = 0  # the group that just closed, if the previous item was a group
    at = 0
    while at < len(pattern):
        c = pattern[at]
        previous_group, group_product = group_product, 0
        if c == "\\":
            at += 2
            continue
        if c == "[":
            at = _class_end(pattern, at)
            continue
        if c == "(":
            inner.append(1)
            if len(inner) - 1 > MAX_PATTERN_DEPTH:
                raise GrammarRefused(
                    where, f"the pattern nests groups more than {MAX_PATTERN_DEPTH} deep"
                )
        elif c == ")" and len(inner) > 1:
            group_product = inner.pop()
            inner[-1] = max(inner[-1], group_product)
        elif c in "*+" and previous_group:
            _check_group_repetition(UNBOUNDED_GROUP_FACTOR * previous_group, where)
            inner[-1] = max(inner[-1], UNBOUNDED_GROUP_FACTOR * previous_group)
        elif c == "{" and (match := _QUANTIFIER.match(pattern, at)):
            count = max(int(match.group(1) or 0), int(match.group(2) or 0))
            if match.group(2) == "":  # {m,}: m copies, then as many as wanted
                count = max(count, UNBOUNDED_GROUP_FACTOR if previous_group else 0)
            if previous_group:
                count *= previous_group
                _check_group_repetition(count, where)
            elif count > MAX_REPETITION:
                raise GrammarRefused(
                    where, f"the pattern repeats {count} times, over the limit of {MAX_REPETITION}"
                )
            inner[-1] = max(inner[-1], count)
            at = match.end()
            continue
        at += 1


def _check_group_repetition(count: int, where: str) -> None:
    if count > MAX_GROUP_REPETITION:
        raise GrammarRefused(
            where,
            f"the pattern repeats a group {count} times (nested repetitions multiply, and an "
            f"unbounded one counts as {UNBOUNDED_GROUP_FACTOR}), over the limit of "
            f"{MAX_GROUP_REPETITION}",
        )


def _class_end(pattern: str, start: int) -> int:
    """The index after the ``]`` that closes the class opened at ``start``."""
    at = start + 1
    if at < len(pattern) and pattern[at] == "^":
        at += 1
    if at < len(pattern) and pattern[at] == "]":
        at += 1  # a leading ] is a literal
    while at < len(pattern) and pattern[at] != "]":
        at += 2 if pattern[at] == "\\" else 1
    return at + 1


# GBNF tokens that matter for its shape; string literals, character classes and comments are
# skipped whole so their contents are never mistaken for structure.
_GBNF_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"'  # a literal
    r"|\[(?:\\.|[^\]\\])*\]"  # a character class
    r"|#[^\n]*"  # a comment
    r"|\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}"  # a repetition
    r"|[()]",
    re.DOTALL,
)


def check_grammar(gbnf: str) -> None:
    """Refuse GBNF text llama.cpp could not parse safely: too long, nested too deep, or with a
    repetition so large the parser would copy the repeated item beyond memory."""
    if len(gbnf.encode("utf-8")) > MAX_GRAMMAR_BYTES:
        raise GrammarRefused(
            "", f"the output grammar is over the limit of {MAX_GRAMMAR_BYTES // 1024} KiB"
        )
    depth = 0
    for match in _GBNF_TOKEN.finditer(gbnf):
        token = match.group()
        if token == "(":
            depth += 1
            if depth > MAX_GRAMMAR_DEPTH:
                raise GrammarRefused(
                    "", f"the output grammar nests more than {MAX_GRAMMAR_DEPTH} groups deep"
                )
        elif token == ")":
            depth = max(depth - 1, 0)
        elif token.startswith("{"):
            count = max(int(n) for n in (match.group(1) or "0", match.group(2) or "0"))
            if count > MAX_REPETITION:
                raise GrammarRefused(
                    "",
                    f"the output grammar repeats {count} times, over the limit of {MAX_REPETITION}",
                )
