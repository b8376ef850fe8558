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

Mode ``fairness`` (issue 21): 8 clients (``--fair-clients``) send small single-item requests as
above, first alone, then while one more client sends big requests back to back: ``--max-items``
items each, every text at the server's ``--max-item-chars`` cap (real HH text repeated to the
cap; the body is serialized once, so building it never holds up the small clients' loop). The
two cases run back to back on one server, ``--fair-rounds`` times alternately, so both meet the
same machine. Target: the small requests' p99 with the big client under 2x their p99 alone, and
0 small or big requests failed or lost (a big request still in flight when its round ends is
cancelled and reported as such).

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
    p.add_argument("--train-pairs", type=int, default=0,
                   help="train that model on the first N pairs only (0: all); latency does "
                        "not depend on how well it was trained")
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
    p.add_argument("--fair-clients", type=int, default=8, help="small clients (fairness)")
    p.add_argument("--fair-rounds", type=int, default=2,
                   help="alone / with-big-client pairs (fairness)")
    p.add_argument("--max-items", type=int, default=512,
                   help="items per big request (fairness; the server's --max-items)")
    p.add_argument("--max-item-chars", type=int, default=0,
                   help="characters per big item; 0: the server's default cap, from /info")
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
    if args.train_pairs:
        ds = ds.select(range(min(args.train_pairs, len(ds))))
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


def big_body(items: list[tuple[str, str]], count: int, chars: int) -> bytes:
    """One /get_reward request of ``count`` items, each text exactly ``chars`` characters of
    real HH text (repeated), serialized once."""
    text = ("".join(p + r for p, r in items[:50]) * (1 + chars // 1000))[:chars]
    prompt = text[: chars // 2]
    return json.dumps({"query": [text] * count, "prompts": [prompt] * count,
                       "labels": [None] * count}).encode()


async def big_client(url: str, body: bytes, stop: asyncio.Event, counts: dict) -> None:
    """Big requests back to back until ``stop``; counts answered, failed and cancelled."""
    import httpx

    async with httpx.AsyncClient(timeout=1800) as client:
        while not stop.is_set():
            post = asyncio.ensure_future(client.post(
                f"{url}/get_reward", content=body, headers={"content-type": "application/json"}))
            ender = asyncio.ensure_future(stop.wait())
            await asyncio.wait({post, ender}, return_when=asyncio.FIRST_COMPLETED)
            ender.cancel()
            if not post.done():
                post.cancel()
                counts["cancelled_at_end"] += 1
                return
            try:
                answer = post.result()
                ok = answer.status_code == 200 and len(answer.json()["rewards"]) > 1
            except (httpx.HTTPError, ValueError, KeyError):
                ok = False
            counts["answered" if ok else "failed"] += 1


async def run_fairness(args: argparse.Namespace, url: str,
                       items: list[tuple[str, str]]) -> list[dict]:
    """Small requests alone, then beside a big client, ``--fair-rounds`` times."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        info = (await client.get(f"{url}/info")).json()
    body = big_body(items, args.max_items, args.max_item_chars or info["max_item_chars"])
    runs = []
    await load(url, args.endpoint, items, args.fair_clients, args.warmup)
    for round_ in range(args.fair_rounds):
        for case in ("alone", "with big client"):
            stop, counts = asyncio.Event(), {"answered": 0, "failed": 0, "cancelled_at_end": 0}
            task = None
            if case != "alone":
                task = asyncio.ensure_future(big_client(url, body, stop, counts))
                await asyncio.sleep(3)  # the first big request is parsed and queued
            result = await load(url, args.endpoint, items, args.fair_clients, args.requests)
            stop.set()
            if task is not None:
                await task
                result["big"] = {**counts, "body_mb": round(len(body) / 2**20, 1),
                                 "items": args.max_items}
            result.update(mode="fairness", case=case, round=round_)
            runs.append(result)
            print(f"fairness round {round_} {case:15s}: p50 {result['p50_ms']:7.1f} ms, p99 "
                  f"{result['p99_ms']:7.1f} ms, failed {result['failed']}, lost "
                  f"{result['lost']}, big {result.get('big')}", file=sys.stderr)
    return runs


async def run_mode(args: argparse.Namespace, model: Path, mode: str,
                   items: list[tuple[str, str]]) -> list[dict]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = ["--no-batching"] if mode == "no-batching" else []
    if mode == "fairness":
        flags = ["--max-items", str(args.max_items)]
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
        if mode == "fairness":
            runs = await run_fairness(args, url, items)
        for clients in (int(c) for c in args.clients.split(",") if mode != "fairness"):
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
    runs = [r for r in results["runs"] if r["mode"] != "fairness"]
    fair = [r for r in results["runs"] if r["mode"] == "fairness"]
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
    if fair:
        lines += ["", "| round | case | small req/s | p50 ms | p99 ms | p99 vs alone | failed | "
                      "lost | big answered | big failed |", "|---|---|---:|---:|---:|---:|---:|"
                      "---:|---:|---:|"]
        alone = {r["round"]: r["p99_ms"] for r in fair if r["case"] == "alone"}
        for r in fair:
            big = r.get("big", {})
            lines.append(f"| {r['round']} | {r['case']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | "
                         f"{r['p99_ms']:.0f} | {r['p99_ms'] / alone[r['round']]:.2f}x | "
                         f"{r['failed']} | {r['lost']} | {big.get('answered', '')} | "
                         f"{big.get('failed', '')} |")
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
