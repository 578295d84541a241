"""What rendering chat templates in a bounded child process costs, against rendering in-process.

Renders a ChatML-style template over a 12-message conversation: ``render`` (a fork-server child
held to 2 s and 64 MiB, as Homefire does for every chat request) and the same sandboxed render
called directly in this process (no bounds against single C calls). Alternating runs; prints
the medians and the ratio. The child's cost is per chat request, beside a prefill and a decode
that take far longer.

    python bench/template_render.py [RUNS]      (default 30)
"""

from __future__ import annotations

import statistics
import sys
import time

from app.core.engine.chat_template import ChatTemplate, render, render_text
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


def _bounded() -> None:
    render(TEMPLATE, MESSAGES)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    _bounded()  # starts the fork server once, as the first chat after launch does
    timings: dict[str, list[float]] = {"in-process": [], "child process": []}
    for _ in range(runs):
        for name, run in (("in-process", _in_process), ("child process", _bounded)):
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    for name, ms in medians.items():
        print(f"{name:>14}: median {ms:7.2f} ms per render ({runs} runs)")
    print(f"child ÷ in-process: {medians['child process'] / medians['in-process']:.1f}x")


if __name__ == "__main__":
    main()
