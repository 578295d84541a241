"""What rendering chat templates in Homefire's bounded renderer costs, against rendering in-process.

Renders a ChatML-style template over a 12-message conversation three ways:

* ``warm child``: ``TemplateRenderer.render`` as the engine calls it for every chat request, a
  pipe round trip to a child that is already running, held to 2 s and 64 MiB per render;
* ``in-process``: the same sandboxed render called directly (no bounds against single C calls),
  alternating with the warm child;
* ``fresh child``: a new renderer's first render, what a fork per render would cost (and what
  the first chat after a model load, or the first render after a killed one, pays), measured
  after the others.

Prints the medians and the ratios to in-process; the warm cost is per chat request, beside a
prefill and a decode that take far longer.

    python bench/template_render.py [RUNS]      (default 30)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from app.core.engine.chat_template import ChatTemplate, TemplateRenderer, render_text
from app.core.engine.request import ChatMessage

TEMPLATE = ChatTemplate(
    source=(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
)
MESSAGES = tuple(
    ChatMessage("user" if i % 2 == 0 else "assistant", f"message {i}: " + "words " * 200)
    for i in range(12)
)


def _in_process() -> None:
    variables = {
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "add_generation_prompt": True,
        "bos_token": "",
        "eos_token": "",
        "tools": None,
    }
    render_text(TEMPLATE.source, variables)


def _fresh_child() -> None:
    with TemplateRenderer() as renderer:
        renderer.render(TEMPLATE, MESSAGES)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    timings: dict[str, list[float]] = {"in-process": [], "warm child": [], "fresh child": []}
    with TemplateRenderer() as renderer:
        renderer.render(TEMPLATE, MESSAGES)  # starts the fork server and the child once

        def warm_child() -> None:
            renderer.render(TEMPLATE, MESSAGES)

        ways = [("in-process", _in_process), ("warm child", warm_child)]
        for i in range(runs):
            # Each goes first half the time: what ran just before skews a short timing.
            for name, run in ways if i % 2 else ways[::-1]:
                timings[name].append(_timed(run))
    # Apart from the others: a child's exit right before a short timing skews it.
    timings["fresh child"] = [_timed(_fresh_child) for _ in range(runs)]
    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    for name, ms in medians.items():
        print(f"{name:>12}: median {ms:7.2f} ms per render ({runs} runs)")
    baseline = medians["in-process"]
    print(f"warm child ÷ in-process: {medians['warm child'] / baseline:.1f}x")
    print(f"fresh child ÷ in-process: {medians['fresh child'] / baseline:.1f}x")


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
