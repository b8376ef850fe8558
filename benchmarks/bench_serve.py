"""Load benchmark of ``rewardlab serve``: throughput and latency with and without dynamic batching.

A real server (``python -m rewardlab.cli serve``, in its own process, on 127.0.0.1 only) scores
with an embedding-backend ensemble (M = 10 by default). For each concurrency C in
``--clients`` and each mode (batching on, and ``--no-batching``: one forward pass per request, as
OpenRLHF's ``serve_rm``), C closed-loop ``httpx`` asyncio clients each send single-item requests
(OpenRLHF's ``/get_reward`` shape: one query = prompt + response, with its prompt) one after
another until ``--requests`` requests have been answered in all. The items are real HH-RLHF
(prompt, response) pairs, drawn at random; the server keeps no feature cache, so every request
is a real forward pass. A bounded count of requests goes to 127.0.0.1 and nowhere else.

Reported per run: requests per second (answered requests over the wall time of the run), p50 and
p99 latency, and requests failed (a non-200 answer or a transport error) or lost (never
answered). Targets (issue 13): batching at 32 clients >= 3x the requests per second of no
batching, p99 under 1 s, and 0 failed or lost.

Without ``--model`` the script first trains an M-member embedding model on HH-RLHF (its cached
features make that quick) in a temporary folder.

Reproduce (from the repository root, on a quiet machine)::

    .venv/bin/python benchmarks/bench_serve.py --clients 1,8,32 --requests 320 \\
        --json bench_serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import HH_FILES, expand, write_results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, help="a saved model; default: train one on --data")
    p.add_argument("--data", nargs="+", default=[HH_FILES], help="HH-RLHF files (globs)")
    p.add_argument("--members", type=int, default=10, help="M of the model trained here")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrencies")
    p.add_argument("--requests", type=int, default=320, help="requests per run (bounded)")
    p.add_argument("--warmup", type=int, default=20, help="untimed requests before each run")
    p.add_argument("--modes", default="batching,no-batching")
    p.add_argument("--endpoint", default="/get_reward", choices=["/get_reward", "/score"])
    p.add_argument("--server-args", default="", help="extra `rewardlab serve` flags")
    p.add_argument("--server-threads", type=int, default=0,
                   help="torch CPU threads of the server (OMP_NUM_THREADS); 0: torch's choice")
    p.add_argument("--cut-chars", type=int, default=0,
                   help="keep the last N characters of each prompt and the first N of each "
                        "response (short texts, where per-request overhead dominates); 0: whole")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def load_items(patterns: list[str], n: int, seed: int, cut: int) -> list[tuple[str, str]]:
    """``n`` random (prompt, response) items from HH-RLHF (chosen and rejected alike), cut to
    ``cut`` characters each when ``cut`` > 0."""
    from rewardlab.data import read_preferences

    ds, _ = read_preferences(expand(patterns))
    rng = random.Random(seed)
    rows = rng.sample(range(len(ds)), min(n, len(ds)))
    items = [(ds[i]["prompt"], ds[i][rng.choice(["chosen", "rejected"])]) for i in rows]
    return [(p[-cut:], r[:cut]) for p, r in items] if cut > 0 else items


def train_model(args: argparse.Namespace, folder: Path) -> Path:
    from rewardlab.config import ModelConfig
    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs, build_reward_model

    ds, _ = read_preferences(expand(args.data))
    model = build_reward_model(ModelConfig(members=args.members, seed=args.seed), progress=False)
    model.fit(Pairs.from_dataset(ds))
    return model.save(folder / "model")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(client, url: str, proc: subprocess.Popen) -> None:
    import httpx

    for _ in range(1800):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if (await client.get(f"{url}/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not come up")


def body_of(item: tuple[str, str], endpoint: str) -> dict:
    prompt, response = item
    if endpoint == "/get_reward":
        return {"query": [prompt + response], "prompts": [prompt], "labels": [None]}
    return {"prompts": [prompt], "responses": [response]}


async def load(url: str, endpoint: str, items: list[tuple[str, str]], clients: int,
               total: int) -> dict:
    """``clients`` closed-loop clients sending ``total`` single-item requests in all."""
    import httpx

    latencies: list[float] = []
    failed = 0
    next_index = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client) -> None:
        nonlocal next_index, failed
        while next_index < total:
            k = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                answer = await client.post(f"{url}{endpoint}",
                                           json=body_of(items[k % len(items)], endpoint))
                ok = answer.status_code == 200 and len(
                    answer.json()["rewards" if endpoint == "/get_reward" else "mean"]) == 1
            except (httpx.HTTPError, ValueError, KeyError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                failed += 1

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - start
    lat = sorted(latencies)

    def pick(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    return {"clients": clients, "requests": total, "answered": len(lat), "failed": failed,
            "lost": total - len(lat) - failed, "seconds": wall, "rps": len(lat) / wall,
            "p50_ms": 1000 * pick(0.50), "p99_ms": 1000 * pick(0.99),
            "mean_ms": 1000 * statistics.fmean(lat) if lat else float("nan")}


async def run_mode(args: argparse.Namespace, model: Path, mode: str,
                   items: list[tuple[str, str]]) -> list[dict]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = ["--no-batching"] if mode == "no-batching" else []
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve", str(model), "--port", str(port),
           "--quiet", *flags, *args.server_args.split()]
    env = dict(os.environ)
    if args.server_threads:
        env["OMP_NUM_THREADS"] = str(args.server_threads)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_healthy(client, url, proc)
        runs = []
        for clients in (int(c) for c in args.clients.split(",")):
            await load(url, args.endpoint, items, clients, args.warmup)
            result = await load(url, args.endpoint, items, clients, args.requests)
            result["mode"] = mode
            runs.append(result)
            print(f"{mode:12s} C={clients:3d}: {result['rps']:7.1f} req/s, p50 "
                  f"{result['p50_ms']:7.1f} ms, p99 {result['p99_ms']:7.1f} ms, failed "
                  f"{result['failed']}, lost {result['lost']}", file=sys.stderr)
        async with httpx.AsyncClient(timeout=30) as client:
            runs[-1]["server_info"] = (await client.get(f"{url}/info")).json()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    return runs


def markdown(results: dict) -> str:
    runs = results["runs"]
    base = {r["clients"]: r["rps"] for r in runs if r["mode"] == "no-batching"}
    lines = [f"M={results['members']}, {results['requests']} single-item requests per run to "
             f"{results['endpoint']}, texts cut to {results['cut_chars'] or 'no'} characters, "
             f"CPUs {results['cpu_count']}, load average before {results['load_before']}, "
             f"after {results['load_after']}",
             "", "| mode | clients | req/s | vs no batching | p50 ms | p99 ms | failed | lost |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        ratio = r["rps"] / base[r["clients"]] if r["clients"] in base else float("nan")
        lines.append(f"| {r['mode']} | {r['clients']} | {r['rps']:.1f} | {ratio:.2f}x | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failed']} | {r['lost']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    items = load_items(args.data, 2000, args.seed, args.cut_chars)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train_model(args, Path(tmp))
        members = json.loads((Path(model) / "rewardlab.json").read_text())["config"]["members"]
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        runs = []
        for mode in args.modes.split(","):
            runs += asyncio.run(run_mode(args, Path(model), mode, items))
    results = {"members": members, "requests": args.requests, "endpoint": args.endpoint,
               "cut_chars": args.cut_chars,
               "cpu_count": os.cpu_count(), "load_before": load_before,
               "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()), "runs": runs}
    print(markdown(results))
    return write_results(args.json, results)


if __name__ == "__main__":
    main()
