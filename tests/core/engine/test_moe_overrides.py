"""llama.cpp's --n-cpu-moe as tensor-override patterns."""

from __future__ import annotations

import re

from app.core.engine.backend import moe_expert_patterns


def test_no_layers_means_no_override() -> None:
    assert moe_expert_patterns(0) == ()


def test_patterns_match_only_the_experts_of_the_first_layers() -> None:
    ((pattern, device),) = moe_expert_patterns(2)
    assert device == "CPU"
    rx = re.compile(pattern)
    assert rx.search("blk.0.ffn_up_exps.weight")
    assert rx.search("blk.1.ffn_down_exps.weight")
    assert rx.search("blk.1.ffn_gate_exps.weight")
    assert not rx.search("blk.2.ffn_up_exps.weight")
    assert not rx.search("blk.10.ffn_up_exps.weight")
    assert not rx.search("blk.0.ffn_up.weight")
    assert not rx.search("blk.0.attn_q.weight")
