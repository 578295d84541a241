"""What one engine job per text costs the embedding routes, measured in the same run.

The endpoint embeds each input as its own engine job (so a client that leaves stops the work
between texts and other requests take turns). This embeds the same 32 short texts on the
starter model through ``POST /v1/embeddings`` on a real server, and as one engine job holding
all of them in the same process, alternating runs, and prints texts/s and the ratio.
Target: endpoint ÷ one job >= 0.9.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TEXTS = [f"def function_{i}(x):\n    return x * {i} + {i * 7}" for i in range(32)]


def main() -> int:
    os.environ.setdefault("HOMEFIRE_HOME", tempfile.mkdtemp(prefix="homefire-bench-"))
    from app.core.library.starter import StarterSource
    from app.core.load_options import LoadOptions
    from app.core.server.app import ServerConfig
    from app.core.services import AppServices

    source = StarterSource(Path(tempfile.mkdtemp(prefix="homefire-starter-")))
    (model,) = source.scan()
    services = AppServices.create()
    try:
        path = source.prepare(model)
        services.load_model(services.library.resolve(str(path)), LoadOptions(path, n_ctx=2048))
        url = services.start_server(ServerConfig(port=0)).url
        client = httpx.Client(timeout=300)
        client.post(f"{url}/v1/embeddings", json={"input": TEXTS[:2]})  # embedding context made
        endpoint: list[float] = []
        one_job: list[float] = []
        for _ in range(RUNS):
            started = time.perf_counter()
            reply = client.post(f"{url}/v1/embeddings", json={"input": TEXTS})
            endpoint.append(len(TEXTS) / (time.perf_counter() - started))
            assert reply.status_code == 200, reply.text
            started = time.perf_counter()
            services.pool.default().engine.embed(TEXTS).result()
            one_job.append(len(TEXTS) / (time.perf_counter() - started))
        ratio = statistics.median(endpoint) / statistics.median(one_job)
        print(f"endpoint, one job per text: {statistics.median(endpoint):8.1f} texts/s")
        print(f"one engine job, all texts:  {statistics.median(one_job):8.1f} texts/s")
        print(f"ratio: {ratio:.2f} (target >= 0.9)")
        return 0 if ratio >= 0.9 else 1
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
