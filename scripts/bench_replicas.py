"""Benchmark of the shared state (docs/replicas.md): 1 and 2 replicas with `state-store` on Redis.

    python scripts/bench_replicas.py [--requests N] [--concurrency C] [--rounds R] [--json]

A measurement, not a test; it reuses scripts/bench.py's fake upstream, process handling and
load generator. Everything is on 127.0.0.1 and every process is stopped by its PID:
a fast fake Code Assist, a redis-server without persistence on a free port, and cliproxy
mitmdumps sharing one auth-dir (two Gemini accounts) and that Redis. Scenarios, interleaved in
R rounds so a drifting VM affects each alike:

- `1 replica, in-process`: the baseline (`state-store: ""`);
- `1 replica, Redis`: the same replica with the shared state on;
- `2 replicas, Redis`: the load split evenly over two replicas.

Throughput is OpenAI chat, non-stream, C keep-alive workers; CPU/req is the replicas' own CPU
(utime+stime) per request. The added latency of the Redis
round trips per request is the p50 difference at concurrency 1 between the two single-replica
scenarios, and, on its own, the p50 of the store's per-request call (`view`: INCR + MGET, one
pipelined round trip) timed in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # scripts/bench.py: run from a checkout, like this script

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def start_redis(children: bench.Children, tmp: Path) -> tuple[bench.Target, str]:
    port = bench.free_port()
    proc = children.start(
        [REDIS_SERVER, "--port", str(port), "--bind", bench.HOST, "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        tmp / "redis.log",
    )  # fmt: skip
    target = bench.Target("redis", f"http://{bench.HOST}:{port}", proc, tmp / "redis.log")
    bench.wait_listening(target)
    return target, f"redis://{bench.HOST}:{port}/0"


def shared_auth_dir(tmp: Path) -> Path:
    auth_dir = tmp / "auth"
    auth_dir.mkdir(mode=0o700)
    for name in ("a", "b"):
        data = bench.gemini_auth_file(f"ya29.bench-{name}")
        data["email"] = f"bench-{name}@example.com"
        path = auth_dir / f"gemini-bench-{name}.json"
        path.write_text(json.dumps(data))
        path.chmod(0o600)
    return auth_dir


def start_replica(
    children: bench.Children, tmp: Path, name: str, fake_url: str, auth_dir: Path, store: str
) -> bench.Target:
    home = tmp / name
    home.mkdir()
    port = bench.free_port()
    endpoints = {"gemini-cli": fake_url, "google-token": fake_url + "/token"}
    config = {"host": bench.HOST, "port": port, "auth-dir": str(auth_dir), "state-store": store,
              "endpoints": endpoints}  # fmt: skip
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    log = home / "mitmdump.log"
    proc = children.start(
        [bench.MITMDUMP, "-q", "-s", str(bench.ROOT / "addons" / "cliproxy.py")],
        log,
        cwd=home,
        env={"CLIPROXY_CONFIG": str(home / "config.yaml")},
    )
    target = bench.Target(name, f"http://{bench.HOST}:{port}", proc, log)
    bench.wait_listening(target, "/healthz")
    return target


async def drive(targets: list[bench.Target], n: int, c: int) -> tuple[float, list[float], int]:
    """n requests by c workers split evenly over `targets`: (wall s, latencies s, errors)."""
    w = bench.CHAT
    samples: list[bench.Sample] = []
    errors: list[str] = []
    clients = [bench.new_client(max(1, c // len(targets))) for _ in targets]
    try:
        t0 = time.monotonic()
        await asyncio.gather(*(
            bench._drive(client, t.base_url + w.path, w, n // len(targets),
                         max(1, c // len(targets)), 0, samples, errors)
            for client, t in zip(clients, targets, strict=True)
        ))  # fmt: skip
        wall = time.monotonic() - t0
    finally:
        for client in clients:
            await client.aclose()
    return wall, [s.seconds for s in samples], len(errors)


async def store_round_trip(url: str, n: int) -> list[float]:
    """The per-request store call on its own, as the pool makes it."""
    from cliproxy.addons.statestore import open_store

    store = open_store(url)
    assert store is not None
    names = ["gemini-bench-a.json", "gemini-bench-b.json"]
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            view = await store.view("bench", "gemini-2.5-pro", names)
            times.append(time.perf_counter() - t0)
            assert view is not None
    finally:
        await store.close()
    return times


async def measure(
    scenarios: dict[str, list[bench.Target]], redis_url: str, opts: argparse.Namespace
) -> dict[str, Any]:
    results: dict[str, dict[str, list[float]]] = {
        k: {"rps": [], "lat": [], "lat1": [], "foreign": [], "cpu": []} for k in scenarios
    }
    errors = 0
    for targets in scenarios.values():  # warm-up, not measured
        errors += (await drive(targets, 200, opts.concurrency))[2]
    per_round = max(opts.requests // opts.rounds, 20)
    for r in range(opts.rounds):
        bench.log(f"round {r + 1}/{opts.rounds}")
        for name, targets in scenarios.items():
            await bench.wait_quiet()
            busy0, ours0 = bench.machine_busy(), bench.our_cpu()
            cpu0 = sum(bench.cpu_seconds(t.pid) for t in targets)
            wall, lat, err = await drive(targets, per_round, opts.concurrency)
            cpu = sum(bench.cpu_seconds(t.pid) for t in targets) - cpu0
            foreign = (bench.machine_busy() - busy0 - (bench.our_cpu() - ours0)) / wall
            _, lat1, err1 = await drive(targets[:1], opts.probe, 1)
            errors += err + err1
            results[name]["rps"].append(len(lat) / wall)
            results[name]["lat"].extend(lat)
            results[name]["lat1"].extend(lat1)
            results[name]["foreign"].append(max(0.0, foreign))
            results[name]["cpu"].append(cpu / max(len(lat), 1))
    rt = await store_round_trip(redis_url, 2000)
    out: dict[str, Any] = {"scenarios": {}, "errors": errors}
    for name, r in results.items():
        out["scenarios"][name] = {
            "req_per_s": statistics.median(r["rps"]),
            "p50_ms": bench._pct(r["lat"], 0.5) * 1000,
            "p50_c1_ms": bench._pct(r["lat1"], 0.5) * 1000,
            "foreign_cores": statistics.mean(r["foreign"]),
            "cpu_ms_per_request": statistics.median(r["cpu"]) * 1000,
        }
    s = out["scenarios"]
    out["added_p50_c1_ms"] = (
        s["1 replica, Redis"]["p50_c1_ms"] - s["1 replica, in-process"]["p50_c1_ms"]
    )
    out["store_view_p50_ms"] = bench._pct(rt, 0.5) * 1000
    out["store_view_p99_ms"] = bench._pct(rt, 0.99) * 1000
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per scenario")
    p.add_argument("--concurrency", type=int, default=20, help="keep-alive client workers")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    p.add_argument("--probe", type=int, default=100, help="concurrency-1 requests per round")
    p.add_argument("--quiet-wait", type=float, default=20.0, help="max wait for other load (s)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    bench.QUIET.update(wait_s=args.quiet_wait, cores=0.3)
    children = bench.Children()
    try:
        with tempfile.TemporaryDirectory(prefix="cliproxy-bench-replicas-") as tmp_name:
            tmp = Path(tmp_name)
            try:
                _, fake_url = bench.start_fake(children, tmp, 20, 5.0)
                _, redis_url = start_redis(children, tmp)
                auth_dir = shared_auth_dir(tmp)
                alone = start_replica(children, tmp, "alone", fake_url, auth_dir, "")
                r1 = start_replica(children, tmp, "r1", fake_url, auth_dir, redis_url)
                r2 = start_replica(children, tmp, "r2", fake_url, auth_dir, redis_url)
                scenarios = {
                    "1 replica, in-process": [alone],
                    "1 replica, Redis": [r1],
                    "2 replicas, Redis": [r1, r2],
                }
                report = asyncio.run(measure(scenarios, redis_url, args))
            finally:
                children.stop_all()
    except KeyboardInterrupt:
        return 130
    report = {"machine": bench.machine(), "options": vars(args)} | report
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(report["machine"])
    print(f"{'scenario':<24} {'req/s':>7} {'p50 ms':>7} {'p50 c=1 ms':>10} {'CPU/req':>8}"
          f" {'other load':>10}")  # fmt: skip
    for name, s in report["scenarios"].items():
        print(f"{name:<24} {s['req_per_s']:>7.0f} {s['p50_ms']:>7.1f} {s['p50_c1_ms']:>10.2f}"
              f" {s['cpu_ms_per_request']:>6.2f}ms {s['foreign_cores']:>9.2f}c")  # fmt: skip
    print(f"added p50 at concurrency 1 (Redis on - off): {report['added_p50_c1_ms']:.2f} ms")
    print(f"store round trip (INCR + MGET, pipelined): p50 {report['store_view_p50_ms']:.3f} ms,"
          f" p99 {report['store_view_p99_ms']:.3f} ms")  # fmt: skip
    print(f"errors: {report['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
