"""One real `bentoml serve` on a free loopback port: ready, search, livez, metrics, headers."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from serving.run import free_port, start_server, stop_server, wait_ready

SECRET = "subprocess-secret-0123456789abcdef0123456789"


@pytest.mark.slow
def test_real_bentoml_server(fresh_world, tmp_path) -> None:
    port = free_port()
    overlay = fresh_world.overlay("subprocess")
    overlay.write_text(overlay.read_text() + f"serving:\n  host: 127.0.0.1\n  port: {port}\n")
    settings = fresh_world.settings().model_copy(
        update={
            "serving": fresh_world.settings().serving.model_copy(
                update={"host": "127.0.0.1", "port": port}
            )
        }
    )
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    env["MEDIA_GATEWAY_JWT_SECRET"] = SECRET
    log_file = tmp_path / "server.log"
    proc = start_server(settings, [overlay], env=env, log_file=log_file)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(proc, base, timeout_s=240)
        except Exception:
            print(log_file.read_text()[-4000:])
            raise
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/livez").status_code == 200
            r = http.post("/search", json={"query": "movie about dreams and stealing secrets"})
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["content_id"] == "movie:27205"
            assert r.headers["AI-ARW-Level"] == "ARW-3"
            assert (
                http.get("/content/movie:603")
                .headers["content-type"]
                .startswith("application/ld+json")
            )
            metrics = http.get("/metrics")
            assert metrics.status_code == 200 and "bentoml_service" in metrics.text
            assert http.post("/recommend", json={"user": "alice"}).status_code == 401
    finally:
        stop_server(proc)
    assert proc.returncode is not None
    # spans of unsampled requests are not recorded (serving/tracing.py), yet carry their ids
    access = [line for line in log_file.read_text().splitlines() if "path=/search" in line]
    assert access, "the access log has the /search request"
    assert re.search(r"\(trace=[0-9a-f]{32},span=[0-9a-f]{16},sampled=0", access[0]), access[0]
