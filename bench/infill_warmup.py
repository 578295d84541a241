"""What llama.vim's and llama.vscode's warm-up requests buy an /infill completion, measured in
the same run.

Between keystrokes both plugins send their ring of context chunks with ``n_predict: 0``, so the
server reads the chunks into a slot's cache before the next completion needs them. This sends
the same completion (16 other files, a prefix and a suffix, 1 token) through ``POST /infill``
on a real server, alternating: cold (another set of files went through the slot just before)
and warm (a warm-up with the same files just before). It prints the prompt tokens read and the
request's wall time, medians, and the ratio warm ÷ cold. The model is the tests' tiny coder
(random weights, FIM tokens): reading is what is measured, not what it writes.

    python bench/infill_warmup.py [RUNS]      (default 10)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_CTX = 4096
FILES = 16
LINES_PER_FILE = 4


def _files(tag: str) -> list[dict[str, str]]:
    return [
        {
            "filename": f"{tag}/module_{i}.py",
            "text": "".join(
                f"def {tag}_f{i}_{n}(x):\n    return x * {n} + {i}\n" for n in range(LINES_PER_FILE)
            ),
        }
        for i in range(FILES)
    ]


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    os.environ.setdefault("HOMEFIRE_HOME", tempfile.mkdtemp(prefix="homefire-bench-"))
    from app.core.load_options import LoadOptions
    from app.core.server.app import ServerConfig
    from app.core.services import AppServices
    from tests.server.tiny_coder import write_tiny_coder

    model = write_tiny_coder(Path(tempfile.mkdtemp(prefix="homefire-coder-")) / "tiny-coder.gguf")
    services = AppServices.create()
    try:
        options = LoadOptions(model_path=model, n_ctx=N_CTX, parallel=1)
        services.load_model(services.library.resolve(str(model)), options)
        url = services.start_server(ServerConfig(port=0)).url
        client = httpx.Client(timeout=300)
        files, other = _files("project"), _files("elsewhere")
        completion: dict[str, Any] = {
            "input_prefix": "import math\n\n\ndef area(r):\n",
            "prompt": "    return ",
            "input_suffix": "\n\n\nprint(area(2))\n",
            "input_extra": files,
            "n_predict": 1,
            "temperature": 0,
        }
        read: dict[str, list[int]] = {"cold": [], "warm": []}
        wall: dict[str, list[float]] = {"cold": [], "warm": []}
        for _ in range(runs):
            for kind, before in (("cold", other), ("warm", files)):
                warm_up = {"input_extra": before, "n_predict": 0}
                assert client.post(f"{url}/infill", json=warm_up).status_code == 200
                started = time.perf_counter()
                answer = client.post(f"{url}/infill", json=completion).json()
                wall[kind].append(time.perf_counter() - started)
                assert not answer["truncated"], "the bench's prompt must fit its context"
                read[kind].append(answer["timings"]["prompt_n"])
        evaluated = answer["tokens_evaluated"]
        for kind in ("cold", "warm"):
            print(
                f"{kind}: {statistics.median(read[kind]):6.0f} of {evaluated} prompt tokens read, "
                f"{statistics.median(wall[kind]) * 1000:7.1f} ms per request (measured, median)"
            )
        ratio = statistics.median(wall["warm"]) / statistics.median(wall["cold"])
        print(f"warm / cold request time: {ratio:.2f} (measured; target <= 0.5)")
        return 0 if ratio <= 0.5 else 1
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
