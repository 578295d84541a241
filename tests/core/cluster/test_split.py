"""The layer split is planned from the machines' memory (or the user's weights) before a load."""

from __future__ import annotations

import pytest

from app.core.cluster.split import plan_split
from app.core.cluster.worker import WorkerAddress, WorkerMemory
from app.core.errors import ConfigError, WorkerTooSmall

GIB = 2**30


def worker(name: str, free_gib: float, devices: int = 1) -> WorkerMemory:
    free = int(free_gib * GIB)
    return WorkerMemory(WorkerAddress(name, 50052), free, free, "test", devices=devices)


def test_a_cpu_machine_keeps_its_share_of_the_first_blocks_and_workers_take_the_rest() -> None:
    split = plan_split(
        model_bytes=30 * GIB,
        n_layers=29,  # 30 blocks with the output layer
        local_free_bytes=20 * GIB,
        workers=[worker("a", 20), worker("b", 20)],
    )
    assert split.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert split.local_layers == 10
    assert split.n_gpu_layers == 20  # llama.cpp offloads the last 20 of 30 blocks
    assert split.device_split == pytest.approx((1 / 3, 1 / 3))


def test_the_users_weights_decide_when_given() -> None:
    split = plan_split(
        model_bytes=10 * GIB,
        n_layers=9,
        local_free_bytes=100 * GIB,
        workers=[worker("a", 100)],
        user_split=(3, 1),
    )
    assert split.shares == pytest.approx((0.75, 0.25))
    assert (split.local_layers, split.n_gpu_layers) == (8, 2)


def test_a_gpu_here_offloads_every_block_and_takes_its_share_after_the_workers() -> None:
    split = plan_split(
        model_bytes=10 * GIB,
        n_layers=9,
        local_free_bytes=24 * GIB,
        workers=[worker("a", 48, devices=2)],
        local_gpus=1,
    )
    assert split.n_gpu_layers == -1
    assert split.device_split == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_a_worker_too_small_for_its_share_or_one_block_is_refused() -> None:
    with pytest.raises(WorkerTooSmall, match="worker a:50052"):
        plan_split(
            model_bytes=10 * GIB,
            n_layers=9,
            local_free_bytes=100 * GIB,
            workers=[worker("a", 0.001)],
        )
    with pytest.raises(WorkerTooSmall, match="worker a:50052"):
        plan_split(
            model_bytes=10 * GIB,
            n_layers=9,
            local_free_bytes=100 * GIB,
            workers=[worker("a", 2)],
            user_split=(1, 1),
        )


def test_machines_that_cannot_hold_the_model_together_are_refused() -> None:
    with pytest.raises(WorkerTooSmall, match="together"):
        plan_split(
            model_bytes=100 * GIB,
            n_layers=9,
            local_free_bytes=30 * GIB,
            workers=[worker("a", 30), worker("b", 30)],
        )


@pytest.mark.parametrize("weights", [(1.0,), (1.0, 1.0, 1.0), (0.0, 0.0), (-1.0, 2.0)])
def test_a_split_of_the_wrong_length_or_sign_is_refused(weights: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError):
        plan_split(
            model_bytes=GIB,
            n_layers=9,
            local_free_bytes=10 * GIB,
            workers=[worker("a", 10)],
            user_split=weights,
        )
