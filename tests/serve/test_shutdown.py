"""`rewardlab serve` as a process: SIGTERM finishes the requests in flight, then exits cleanly;
and the warning for an address reachable from other machines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import free_port

from rewardlab.config import ServeConfig
from rewardlab.serve.server import security_warning


def wait_healthy(url: str, proc: subprocess.Popen, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.communicate()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight(embedding_model: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A small token budget: the requests run one after another, so some are still queued or
    # running when the signal comes.
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli", "serve", str(embedding_model), "--port",
         str(port), "--batch-tokens", "64", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        wait_healthy(url, proc)
        n, results = 6, {}
        body = {"prompts": [f"Question {i}: a longer prompt about topic {i}." for i in range(48)],
                "responses": [f"An answer with several words, number {i}." for i in range(48)]}

        def send(k: int) -> None:
            results[k] = httpx.post(f"{url}/score", json=body, timeout=300)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        while httpx.get(f"{url}/info", timeout=30).json()["batching"]["requests"] < n:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=300)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert all(results[k].status_code == 200 for k in range(n)), [
        (results[k].status_code, results[k].text[:200]) for k in range(n)] + [err[-3000:]]
    assert all(len(results[k].json()["mean"]) == 48 for k in range(n))
    assert f"stopped (SIGTERM): served {n} requests" in out


def test_listening_everywhere_warns() -> None:
    assert security_warning(ServeConfig()) is None
    warning = security_warning(ServeConfig(host="0.0.0.0"))
    assert warning is not None and "no authentication" in warning
    keyed = security_warning(ServeConfig(host="0.0.0.0", api_key="k"))
    assert keyed is not None and "plain HTTP" in keyed


def test_serve_without_fastapi_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from rewardlab.serve.server import require_serve_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"pip install 'rewardlab\[serve\]'"):
        require_serve_extra()


def test_rewardlab_imports_without_the_serve_extra() -> None:
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
            "import rewardlab, rewardlab.serve, rewardlab.cli\n"
            "from rewardlab.serve import RewardFunction, EnsembleScorer\n"
            "from rewardlab.stages import score\n"
            "assert 'fastapi' not in [m for m in sys.modules if sys.modules[m]]\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


def test_the_api_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                   embedding_model: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import rewardlab.serve.server as server
    from rewardlab.cli import main

    seen = {}

    def fake_run(scorer, settings, *, quiet):
        seen["settings"] = settings
        return {"stopped_by": ["SIGTERM"],
                "batching": {"requests": 0, "items": 0, "forward_passes": 0}}

    monkeypatch.setattr(server, "run_server", fake_run)
    monkeypatch.setenv("REWARDLAB_API_KEY", " from-env ")
    assert main(["serve", str(embedding_model), "--quiet"]) == 0
    assert seen["settings"].api_key == "from-env"
    assert "stopped (SIGTERM): served 0 requests" in capsys.readouterr().out
    assert main(["serve", str(embedding_model), "--api-key", "flag", "--quiet"]) == 0
    assert seen["settings"].api_key == "flag"  # the flag wins
