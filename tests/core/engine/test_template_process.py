"""The warm renderer: children are reused, replaced when they fail or wear, and never outlive their owner."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from app.core.engine.chat_template import (
    RENDER_LIMITS,
    ChatTemplate,
    PromptPiece,
    TemplateRenderer,
)
from app.core.engine.engine import Engine
from app.core.engine.request import ChatMessage
from app.core.engine.template_process import RenderLimits, RenderPool
from app.core.errors import TemplateError
from app.core.load_options import LoadOptions

CHATML = ChatTemplate(
    source=(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
)
USER = (ChatMessage("user", "hi"),)
TIME_BOMB = ChatTemplate(
    source="{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
)
MEMORY_BOMB = ChatTemplate(source="{{ 'x'.ljust(10**10) }}")


@pytest.fixture
def renderer() -> Iterator[TemplateRenderer]:
    with TemplateRenderer() as renderer:
        yield renderer


def joined(pieces: list[PromptPiece]) -> str:
    return "".join(p.text for p in pieces)


def renderer_processes() -> set[int]:
    """Live processes multiprocessing's fork server started for this process: the renderers."""
    found: set[int] = set()
    for server in psutil.Process().children():
        try:
            if "forkserver" not in " ".join(server.cmdline()):
                continue
            for child in server.children():
                if child.status() != psutil.STATUS_ZOMBIE:
                    found.add(child.pid)
        except psutil.Error:
            continue  # exited while we looked
    return found


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def new_processes(before: set[int]) -> set[int]:
    return renderer_processes() - before


# -- target functions for a pool (module level: children import them by name) ---------------------

_HOARD: list[bytearray] = []


def child_pid() -> str:
    return str(os.getpid())


def hoard(mib: int) -> str:
    """Keeps ``mib`` MiB alive after answering, as a leaky render would."""
    _HOARD.append(bytearray(mib * 2**20))
    return str(os.getpid())


def spin(started: str) -> str:
    """Burns CPU for ever, after writing its pid to the file ``started``."""
    Path(started).write_text(str(os.getpid()))
    while True:
        pass


def nap(seconds: float, started: str = "") -> str:
    """Sleeps, after writing its pid to the file ``started`` (if given): the render is under way."""
    if started:
        Path(started).write_text(str(os.getpid()))
    time.sleep(seconds)
    return str(os.getpid())


# -- tests ------------------------------------------------------------------------------------------


def test_renders_reuse_one_warm_child(renderer: TemplateRenderer) -> None:
    joined(renderer.render(CHATML, USER))  # starts the fork server if no test did yet
    before = renderer_processes()
    renderer.close()
    with TemplateRenderer() as warm:
        for i in range(50):
            text = joined(warm.render(CHATML, (ChatMessage("user", f"message {i}"),)))
            assert f"message {i}<|im_end|>" in text
        assert len(new_processes(before)) == 1


@pytest.mark.parametrize("bomb", [TIME_BOMB, MEMORY_BOMB], ids=["time", "memory"])
def test_a_bomb_is_followed_by_a_normal_render_in_a_fresh_child(
    renderer: TemplateRenderer, bomb: ChatTemplate
) -> None:
    before = renderer_processes()
    renderer.render(CHATML, USER)
    (first,) = new_processes(before)
    with pytest.raises(TemplateError, match="was stopped"):
        renderer.render(bomb, USER)
    assert wait_for(lambda: first not in renderer_processes())
    assert joined(renderer.render(CHATML, USER)).startswith("<|im_start|>user\nhi")
    (second,) = new_processes(before)
    assert second != first


def test_a_render_after_many_renders_and_recycled_children_still_works() -> None:
    with RenderPool(child_pid, RENDER_LIMITS, size=1, renders_per_child=3) as pool:
        pids = [pool.run() for _ in range(10)]
    # three renders per child, then a fresh one: 10 renders need 4 children
    assert [len(set(pids[i : i + 3])) for i in range(0, 9, 3)] == [1, 1, 1]
    assert len(set(pids)) == 4


def test_a_child_that_kept_garbage_past_half_the_bound_is_replaced() -> None:
    limits = RenderLimits(deadline_s=10.0, memory_bytes=64 * 2**20)
    with RenderPool(hoard, limits, size=1) as pool:
        first = pool.run(8)  # 8 MiB kept: under half the bound, the child stays
        assert pool.run(8) == first
        assert pool.run(24) == first  # now 40 MiB kept: replaced after this answer
        assert pool.run(8) != first


def test_two_threads_rendering_at_once_get_their_own_answers(renderer: TemplateRenderer) -> None:
    failures: list[str] = []

    def client(name: str) -> None:
        for i in range(20):
            text = joined(renderer.render(CHATML, (ChatMessage("user", f"{name}-{i}"),)))
            if f"\n{name}-{i}<|im_end|>" not in text:
                failures.append(f"{name}-{i} got {text!r}")

    threads = [threading.Thread(target=client, args=(f"client{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_a_slow_render_does_not_hold_a_render_on_another_thread(tmp_path: Path) -> None:
    before = renderer_processes()
    started = tmp_path / "started"
    limits = RenderLimits(deadline_s=30.0, memory_bytes=64 * 2**20)
    failure: list[TemplateError] = []

    def slow(pool: RenderPool) -> None:
        try:
            pool.run(10.0, str(started))
        except TemplateError as exc:
            failure.append(exc)

    with RenderPool(nap, limits, size=2) as pool:
        thread = threading.Thread(target=slow, args=(pool,))
        thread.start()
        assert wait_for(lambda: started.exists() and started.read_text() != "")
        quick = pool.run(0)
        # Answered while the slow render still runs: a second child took it.
        assert thread.is_alive()
        assert quick != started.read_text()
    thread.join(30)
    assert [str(exc) for exc in failure] == [
        f"the model's chat template renderer stopped (exit code -{signal.SIGKILL})"
    ]  # closing the pool ended it
    assert wait_for(lambda: not new_processes(before))


def test_closing_the_renderer_leaves_no_child_process() -> None:
    before = renderer_processes()
    renderer = TemplateRenderer()
    both_busy = threading.Barrier(2)

    def render_twice() -> None:
        both_busy.wait(10)  # two renders at once: two children
        renderer.render(CHATML, USER)

    threads = [threading.Thread(target=render_twice) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert new_processes(before)
    renderer.close()
    assert wait_for(lambda: not new_processes(before))
    with pytest.raises(TemplateError, match="closed"):
        renderer.render(CHATML, USER)


def test_closing_during_a_render_fails_that_render_and_leaves_no_child() -> None:
    before = renderer_processes()
    renderer = TemplateRenderer()
    outcome: list[BaseException] = []

    def bomb() -> None:
        try:
            renderer.render(TIME_BOMB, USER)
        except TemplateError as exc:
            outcome.append(exc)

    slow = threading.Thread(target=bomb)
    slow.start()
    assert wait_for(lambda: bool(new_processes(before)))
    renderer.close()
    slow.join(30)
    assert len(outcome) == 1
    assert wait_for(lambda: not new_processes(before))


def test_closing_the_engine_leaves_no_renderer_process(tiny_model: Path) -> None:
    before = renderer_processes()
    engine = Engine(max_pending=4)
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, seed=1)).result()
    assert new_processes(before)  # the load probed the template in a child
    engine.close()
    assert wait_for(lambda: not new_processes(before))


def test_the_renderer_survives_its_idle_child_being_killed(renderer: TemplateRenderer) -> None:
    before = renderer_processes()
    renderer.render(CHATML, USER)
    (child,) = new_processes(before)
    os.kill(child, signal.SIGKILL)
    assert wait_for(lambda: child not in renderer_processes())
    assert joined(renderer.render(CHATML, USER)).startswith("<|im_start|>user\nhi")


def test_a_render_whose_child_is_killed_fails_and_the_next_works(tmp_path: Path) -> None:
    before = renderer_processes()
    started = tmp_path / "started"
    with RenderPool(nap, RENDER_LIMITS, size=1) as pool:
        failure: list[TemplateError] = []

        def slow() -> None:
            try:
                pool.run(1.5, str(started))
            except TemplateError as exc:
                failure.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        assert wait_for(started.exists)
        (child,) = new_processes(before)
        os.kill(child, signal.SIGKILL)
        thread.join(30)
        assert [str(exc) for exc in failure] == [
            f"the model's chat template renderer stopped (exit code -{signal.SIGKILL})"
        ]
        assert pool.run(0) != str(child)


def test_the_child_bounds_a_render_not_what_earlier_renders_left() -> None:
    # 20 MiB kept, then a render allocating 50 MiB: over the bound counted from the child's
    # start, within it counted from this render's start, which is the bound each render has.
    limits = RenderLimits(deadline_s=10.0, memory_bytes=64 * 2**20)
    with RenderPool(hoard, limits, size=1, renders_per_child=10) as pool:
        first = pool.run(20)
        assert pool.run(50) == first


_ORPHANING_PARENT = """
import sys, threading
from app.core.engine.chat_template import RENDER_LIMITS
from app.core.engine.template_process import RenderPool
from tests.core.engine.test_template_process import child_pid, spin

pool = RenderPool(child_pid, RENDER_LIMITS)
print(pool.run(), flush=True)  # a child that is idle when this process dies
spinning = RenderPool(spin, RENDER_LIMITS)
threading.Thread(target=spinning.run, args=(sys.argv[1],), daemon=True).start()
threading.Event().wait()
"""


def test_children_end_when_their_parent_dies_idle_or_mid_render(tmp_path: Path) -> None:
    started = tmp_path / "started"
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHANING_PARENT, str(started)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        assert parent.stdout is not None
        idle = psutil.Process(int(parent.stdout.readline()))
        assert wait_for(lambda: started.exists() and started.read_text() != "", 30)
        rendering = psutil.Process(int(started.read_text()))
    finally:
        parent.kill()
        parent.wait(30)

    def gone(child: psutil.Process) -> bool:
        try:
            return child.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    try:
        # Killed before its 2 s deadline, the parent never stopped the render: the idle child
        # sees its pipe close, the rendering one meets its CPU limit (the render's deadline plus
        # a margin, in CPU seconds). The bounds are hang guards for a loaded machine.
        assert wait_for(lambda: gone(idle), 30)
        assert wait_for(lambda: gone(rendering), 120)
    finally:
        for child in (idle, rendering):
            with contextlib.suppress(psutil.Error):
                child.kill()  # psutil refuses if the pid now belongs to another process
