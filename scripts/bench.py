"""Benchmark: bare `mitmdump` pass-through vs cliproxy, in one run
(docs/architecture.md "Performance budget").

    python scripts/bench.py [--requests N] [--concurrency C] [--stream-events E]
                            [--event-delay-ms D] [--streams K] [--rounds R] [--json]
                            [--profile] (--help for the rest)

A measurement, not a test: it always exits 0 once it has measured (budget misses are printed).
CPU figures mean something only on an otherwise idle machine, and even then a VM's speed drifts:
the scenarios take turns in R rounds of short chunks (`--rounds`), each round first waits
(bounded) for other processes to leave the cores idle, every chunk records the foreign load it
saw, and a ratio leaves out the rounds where either side was disturbed.
Everything runs on 127.0.0.1 and every loop is bounded:

1. a fast fake Code Assist (asyncio HTTP/1.1, keep-alive, any bearer) in a child process, so
   that neither the fake nor the load generator shares an event loop or a GIL with the other;
2. bare `mitmdump -q --mode reverse:…` in front of it: the pass-through floor (non-stream), and a
   second bare instance with `stream_large_bodies=1` for the stream floor (bare mitmdump buffers
   whole responses otherwise, which would make its stream figures meaningless);
3. `mitmdump -q -s addons/cliproxy.py` with a temp config (one Gemini CLI account valid for hours,
   `endpoints.gemini-cli` = the fake): OpenAI chat and Anthropic messages non-stream, OpenAI chat
   and Gemini native stream, and RSS with K concurrently open streams.

CPU per request is the mitmdump process's utime+stime (/proc/PID/stat) over the measured
requests, after a warm-up. Stream latency is measured at the client against the fake's own clock:
every upstream event's text is `t=<CLOCK_MONOTONIC of its send>;`, which survives translation into
any dialect, so the client sees per event how long it took from the fake's write to its own read.
"Added" figures subtract the same measurement taken directly against the fake. Stream TTFB and
per-event figures come from a probe at concurrency 1 (the proxy's own overhead) as well as from
the loaded run (overhead plus queueing).

Every child is stopped by its PID (also on Ctrl-C, SIGTERM and errors) and asks the kernel to
SIGTERM it should this process die first (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import platform
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")
HOST = "127.0.0.1"
MODEL = "gemini-2.5-flash"
PROJECT = "bench-project-123"
HOLD_MARKER = b"HOLD-OPEN"  # in a request body: the fake keeps that stream open (RSS figure)
HOLD_MAX_S = 120.0  # a held stream ends by itself after this, whatever happens to the client
TS_RE = re.compile(rb"t=(\d+\.\d{6});")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BUDGET_CPU_RATIO = 1.40
BUDGET_TTFB_MS = 2.0
BUDGET_EVENT_MS = 1.0
BUDGET_RSS_IDLE_MIB = 150.0
BUDGET_RSS_STREAMS_MIB = 250.0


# ---------------------------------------------------------------- the fast fake Code Assist


def _usage(out_tokens: int) -> dict[str, int]:
    return {"promptTokenCount": 24, "candidatesTokenCount": out_tokens,
            "totalTokenCount": 24 + out_tokens, "thoughtsTokenCount": 0}  # fmt: skip


def _wrapper(text: str, finish: bool, out_tokens: int) -> bytes:
    """One Code Assist wrapper (docs/upstreams.md "Code Assist responses and SSE") as compact JSON
    bytes."""
    content = {"role": "model", "parts": [{"text": text}]}
    candidate: dict[str, Any] = {"content": content, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    body = {"response": {"candidates": [candidate], "usageMetadata": _usage(out_tokens),
                         "modelVersion": MODEL, "responseId": "bench-response-1"},
            "traceId": "1a2b3c4d5e6f7a8b"}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


GENERATE_BODY = _wrapper("Hello! How can I help you today? I am a fast fake upstream.", True, 14)


class FakeUpstream:
    """`:streamGenerateContent` → E SSE events, D ms apart; anything else → GENERATE_BODY."""

    def __init__(self, events: int, delay_s: float) -> None:
        self.events = max(1, events)
        self.delay_s = max(0.0, delay_s)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.split(b"\r\n")
        target = lines[0].split(b" ")[1] if lines[0].count(b" ") >= 2 else b"/"
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await self._body(reader, headers)
        keep = headers.get(b"connection", b"").lower() != b"close"
        if not headers.get(b"authorization", b"").lower().startswith(b"bearer "):
            error = b'{"error":{"code":401,"message":"no bearer","status":"UNAUTHENTICATED"}}'
            writer.write(_response_head(401, "application/json", len(error)) + error)
            await writer.drain()
            return keep
        if b":streamGenerateContent" in target:
            return await self._stream(reader, writer, HOLD_MARKER in body) and keep
        writer.write(_response_head(200, "application/json", len(GENERATE_BODY)) + GENERATE_BODY)
        await writer.drain()
        return keep

    @staticmethod
    async def _body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
        if length := headers.get(b"content-length"):
            return await reader.readexactly(int(length))
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            return b""
        parts: list[bytes] = []
        for _ in range(1_000_000):  # bounded: no request has a million chunks
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return b"".join(parts)

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: bool
    ) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for i in range(self.events):
            if i and self.delay_s:
                await asyncio.sleep(self.delay_s)
            last = i == self.events - 1
            # The send time rides in the text, so the client can measure per-event latency.
            event = _wrapper(f"t={time.monotonic():.6f}; ", last, i + 1)
            frame = b"data: " + event + b"\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            await writer.drain()
            if hold and i == 0:
                # Stay open until the proxy hangs up (EOF) or HOLD_MAX_S; then this connection
                # is done, whatever the client does.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(1), HOLD_MAX_S)
                return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _response_head(status: int, content_type: str, length: int) -> bytes:
    reason = {200: "OK", 401: "Unauthorized"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


async def serve_fake(events: int, delay_ms: float) -> None:
    """The child-process mode: print `PORT n`, serve until stdin closes (the parent is gone)."""
    fake = FakeUpstream(events, delay_ms / 1000)
    server = await asyncio.start_server(fake.handle, HOST, 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: os.read(sys.stdin.fileno(), 4096) or gone.set())
    async with server:
        await gone.wait()


# ---------------------------------------------------------------- child processes


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Children:
    """Every process the benchmark starts, stopped by PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], log_path: Path, **kwargs: Any) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(kwargs.pop("env", {}))
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                args,
                stdout=kwargs.pop("stdout", out),
                stderr=subprocess.STDOUT,
                stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                env=env,
                preexec_fn=_die_with_parent,
                **kwargs,
            )
        self.procs.append(proc)
        OUR_PIDS.append(proc.pid)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.stdout:
            with contextlib.suppress(OSError):
                proc.stdout.close()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_fake(children: Children, tmp: Path, events: int, delay_ms: float) -> tuple[Any, str]:
    proc = children.start(
        [sys.executable, __file__, "--serve-fake", "--stream-events", str(events),
         "--event-delay-ms", str(delay_ms)],
        tmp / "fake.log",
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,  # closed by us (or by our death): the fake exits
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        raise RuntimeError(f"the fake upstream did not start: {(tmp / 'fake.log').read_text()}")
    return proc, f"http://{HOST}:{int(line.split()[1])}"


def start_bare(children: Children, tmp: Path, fake_url: str, name: str, *extra: str) -> Target:
    port = free_port()
    args = [MITMDUMP, "-q", "--mode", f"reverse:{fake_url}@{port}",
            "--set", "connection_strategy=lazy", *extra]  # fmt: skip
    proc = children.start(args, tmp / f"{name}.log", cwd=tmp)
    target = Target(name, f"http://{HOST}:{port}", proc, tmp / f"{name}.log")
    wait_listening(target)
    return target


def gemini_auth_file(access: str) -> dict[str, Any]:
    expiry = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "gemini",
        "email": "bench@example.com",
        "project_id": PROJECT,
        "token": {"access_token": access, "refresh_token": "1//bench-refresh",
                  "token_type": "Bearer", "expiry": expiry,
                  "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
    }  # fmt: skip


def start_cliproxy(
    children: Children, tmp: Path, fake_url: str, profile_to: Path | None = None
) -> Target:
    home = tmp / "cliproxy"
    auth_dir = home / "auth"
    auth_dir.mkdir(parents=True)
    auth_dir.chmod(0o700)
    auth = auth_dir / f"gemini-bench@example.com-{PROJECT}.json"
    auth.write_text(json.dumps(gemini_auth_file("ya29.bench-token")))
    auth.chmod(0o600)
    port = free_port()
    endpoints = {"gemini-cli": fake_url, "google-token": fake_url + "/token"}
    config = {"host": HOST, "port": port, "auth-dir": str(auth_dir), "endpoints": endpoints}
    config_path = home / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = home / "mitmdump.log"
    args = [MITMDUMP, "-q", "-s", str(ROOT / "addons" / "cliproxy.py")]
    if profile_to is not None:  # cProfile writes its file when mitmdump exits cleanly (SIGINT)
        args = [sys.executable, "-m", "cProfile", "-o", str(profile_to), *args]
    proc = children.start(
        args,
        log,
        cwd=home,
        env={"CLIPROXY_CONFIG": str(config_path)},
    )
    target = Target("cliproxy", f"http://{HOST}:{port}", proc, log)
    wait_listening(target, "/healthz")
    return target


@dataclass
class Target:
    name: str
    base_url: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def wait_listening(target: Target, probe: str | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    port = int(target.base_url.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if target.proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited early:\n{target.log.read_text()}")
        try:
            if probe is None:
                socket.create_connection((HOST, port), timeout=1).close()
            else:
                httpx.get(target.base_url + probe, timeout=2, trust_env=False)
            return
        except (OSError, httpx.HTTPError):
            time.sleep(0.1)
    raise RuntimeError(f"{target.name} did not come up:\n{target.log.read_text()}")


# ---------------------------------------------------------------- /proc readings


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


OUR_PIDS: list[int] = []  # the children; the benchmark itself is counted by getrusage


def our_cpu() -> float:
    """CPU seconds of the benchmark and every process it started."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    for pid in OUR_PIDS:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += cpu_seconds(pid)
    return total


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle+iowait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


QUIET = {"wait_s": 60.0, "cores": 0.3}  # set from the command line


async def wait_quiet() -> None:
    """Wait (at most QUIET["wait_s"]) until other processes leave the machine nearly idle:
    CPU/request and latency figures mean little while someone else's test run shares the
    cores. Each phase records the foreign load it saw anyway."""
    deadline = time.monotonic() + QUIET["wait_s"]
    waited = False
    while True:
        busy0, ours0, t0 = machine_busy(), our_cpu(), time.monotonic()
        await asyncio.sleep(0.5)
        foreign = (machine_busy() - busy0 - (our_cpu() - ours0)) / (time.monotonic() - t0)
        if foreign <= QUIET["cores"] or time.monotonic() >= deadline:
            if waited:
                log(f"    (other load now {foreign:.2f} cores)")
            return
        if not waited:
            log(f"    waiting for other load ({foreign:.2f} cores) to drop below "
                f"{QUIET['cores']} (at most {QUIET['wait_s']:.0f} s)")  # fmt: skip
            waited = True


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- workloads


def _sentence(n: int) -> str:
    words = ["please", "summarise", "the", "following", "notes", "about", "the", "quarterly",
             "planning", "meeting"]  # fmt: skip
    return " ".join(words[i % len(words)] for i in range(n))


SYSTEM = "You are a helpful assistant. Answer briefly and precisely."
USER = _sentence(40)


def openai_body(stream: bool, hold: bool = False) -> bytes:
    user = USER + (" " + HOLD_MARKER.decode() if hold else "")
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        "max_tokens": 256,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def anthropic_body() -> bytes:
    return json.dumps({
        "model": MODEL, "max_tokens": 256, "system": SYSTEM,
        "messages": [{"role": "user", "content": USER}],
    }).encode()  # fmt: skip


def gemini_body(hold: bool = False) -> bytes:
    user = USER + (" " + HOLD_MARKER.decode() if hold else "")
    return json.dumps({
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": user}]}],
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.7},
    }).encode()  # fmt: skip


BEARER = {"authorization": "Bearer sk-local", "content-type": "application/json"}
ANTHROPIC = {"x-api-key": "sk-local", "anthropic-version": "2023-06-01",
             "content-type": "application/json"}  # fmt: skip
GOOGLE = {"x-goog-api-key": "sk-local", "content-type": "application/json"}
STREAM_PATH = "/v1internal:streamGenerateContent?alt=sse"
GEMINI_STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


@dataclass(frozen=True)
class Workload:
    path: str
    body: bytes
    headers: dict[str, str]
    stream: bool
    expect: bytes  # a fragment every good answer has (proves the translation really ran)


PASS_POST = Workload("/v1/chat/completions", openai_body(False), BEARER, False, b'"candidates"')
PASS_STREAM = Workload(STREAM_PATH, openai_body(True), BEARER, True, b'"candidates"')
CHAT = Workload("/v1/chat/completions", openai_body(False), BEARER, False, b'"choices"')
MESSAGES = Workload("/v1/messages", anthropic_body(), ANTHROPIC, False, b'"content"')
CHAT_STREAM = Workload("/v1/chat/completions", openai_body(True), BEARER, True, b"[DONE]")
GEMINI_STREAM = Workload(GEMINI_STREAM_PATH, gemini_body(), GOOGLE, True, b'"candidates"')


@dataclass
class Sample:
    seconds: float
    ttfb: float = 0.0
    event_latency: list[float] = field(default_factory=list)  # fake write → client read, s
    inter_arrival: list[float] = field(default_factory=list)


class BadAnswer(Exception):
    pass


async def one_request(client: httpx.AsyncClient, url: str, w: Workload) -> Sample:
    t0 = time.monotonic()
    r = await client.post(url, content=w.body, headers=w.headers)
    if r.status_code != 200 or w.expect not in r.content:
        raise BadAnswer(f"{r.status_code}: {r.content[:300]!r}")
    return Sample(time.monotonic() - t0)


async def one_stream(client: httpx.AsyncClient, url: str, w: Workload, events: int) -> Sample:
    t0 = time.monotonic()
    sample = Sample(0.0, ttfb=-1.0)
    pending = b""
    seen = bytearray()  # enough of the body to check `expect`
    arrivals: list[float] = []
    async with client.stream("POST", url, content=w.body, headers=w.headers) as r:
        if r.status_code != 200:
            raise BadAnswer(f"{r.status_code}: {(await r.aread())[:300]!r}")
        async for chunk in r.aiter_raw():
            now = time.monotonic()
            if sample.ttfb < 0:
                sample.ttfb = now - t0
            if len(seen) < 1 << 16:
                seen += chunk
            else:
                seen[-64:] = chunk[-64:]
            pending += chunk
            end = 0
            for m in TS_RE.finditer(pending):
                sample.event_latency.append(now - float(m.group(1)))
                arrivals.append(now)
                end = m.end()
            pending = pending[end:] if end else pending[-64:]
    sample.seconds = time.monotonic() - t0
    if len(sample.event_latency) != events or w.expect not in seen:
        raise BadAnswer(f"{len(sample.event_latency)}/{events} events; {bytes(seen[:300])!r}")
    sample.inter_arrival = [b - a for a, b in itertools.pairwise(arrivals)]
    return sample


@dataclass
class Phase:
    samples: list[Sample]
    errors: list[str]
    wall: float
    cpu: float  # of the measured process (0 when there is none)
    rss_after: float
    foreign: float  # cores busy with processes that are not the benchmark's, on average


def new_client(c: int) -> httpx.AsyncClient:
    """Keep-alive connections like an SDK's; they outlive the other scenarios' turns."""
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c, keepalive_expiry=300)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), trust_env=False)


async def warm_up(client: httpx.AsyncClient, url: str, w: Workload, c: int, events: int) -> None:
    errors: list[str] = []
    await _drive(client, url, w, max(c * 2, 20), c, events, [], errors)
    if errors:
        raise RuntimeError(f"the warm-up against {url} failed: {errors[0]}")


async def measure_chunk(
    client: httpx.AsyncClient,
    target: Target | None,
    url: str,
    w: Workload,
    n: int,
    c: int,
    events: int,
) -> Phase:
    """n requests by c keep-alive workers; CPU of the target's process over exactly those."""
    samples: list[Sample] = []
    errors: list[str] = []
    cpu0 = cpu_seconds(target.pid) if target else 0.0
    busy0, ours0 = machine_busy(), our_cpu()
    t0 = time.monotonic()
    await _drive(client, url, w, n, c, events, samples, errors)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(target.pid) - cpu0 if target else 0.0
    foreign = (machine_busy() - busy0 - (our_cpu() - ours0)) / wall
    rss = rss_mib(target.pid) if target else float("nan")
    return Phase(samples, errors, wall, cpu, rss, max(0.0, foreign))


async def _drive(
    client: httpx.AsyncClient,
    url: str,
    w: Workload,
    n: int,
    c: int,
    events: int,
    samples: list[Sample],
    errors: list[str],
) -> None:
    todo = iter(range(n))

    def call() -> Awaitable[Sample]:
        if w.stream:
            return one_stream(client, url, w, events)
        return one_request(client, url, w)

    async def worker() -> None:
        for _ in todo:  # shared iterator: exactly n calls in total
            try:
                samples.append(await call())
            except (BadAnswer, httpx.HTTPError) as e:
                if len(errors) < 20:
                    errors.append(f"{type(e).__name__}: {e}")
                else:
                    errors.append("")

    await asyncio.gather(*(worker() for _ in range(min(c, n))))


async def hold_streams(
    target: Target, w: Workload, k: int, timeout: float = 60.0, opening: int = 50
) -> dict[str, Any]:
    """Open k streams and keep them all open; RSS of the proxy while they are.

    At most `opening` streams are being opened at any moment: mitmproxy listens with asyncio's
    default backlog (100), so a burst of hundreds of simultaneous connects overflows its accept
    queue and some get reset; real clients do not all connect within the same millisecond.
    """
    url = target.base_url + w.path
    limits = httpx.Limits(max_connections=k, max_keepalive_connections=k)
    gate = asyncio.Semaphore(opening)
    opened = failed = 0
    settled = asyncio.Event()  # every stream is either open or failed
    release = asyncio.Event()
    errors: list[str] = []

    def tick() -> None:
        if opened + failed == k:
            settled.set()

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal opened, failed
        try:
            await gate.acquire()
            async with client.stream("POST", url, content=w.body, headers=w.headers) as r:
                async for _ in r.aiter_raw():
                    opened += 1
                    gate.release()
                    tick()
                    await release.wait()
                    return
            raise httpx.ReadError("the stream ended before its first event")
        except httpx.HTTPError as e:
            failed += 1
            gate.release()
            tick()
            errors.append(f"{type(e).__name__}: {e!r} {e.__cause__!r}")

    rss_before = rss_mib(target.pid)
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(timeout), trust_env=False
    ) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(k)]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), timeout)
            await asyncio.sleep(0.5)  # let the proxy settle its buffers
            rss_open = rss_mib(target.pid)
        finally:
            release.set()
            await asyncio.wait(tasks, timeout=30)
            for task in tasks:
                task.cancel()
    await asyncio.sleep(1.0)
    return {"streams": k, "opened": opened, "rss_before_mib": rss_before,
            "rss_open_mib": rss_open, "rss_after_close_mib": rss_mib(target.pid),
            "errors": errors[:5]}  # fmt: skip


# ---------------------------------------------------------------- figures


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(x: float) -> float:
    return round(x * 1000, 3)


def summarize(phases: list[Phase], delay_s: float) -> dict[str, Any]:
    """One scenario over all its rounds: latencies over every sample, rates and CPU/request
    over the totals; per-round figures kept for the comparisons."""
    samples = [s for p in phases for s in p.samples]
    errors = [e for p in phases for e in p.errors]
    secs = [s.seconds for s in samples]
    wall = sum(p.wall for p in phases)
    cpu = sum(p.cpu for p in phases)
    # one entry per round (None when a round measured nothing), aligned with the rounds
    per_round = [p.cpu * 1000 / len(p.samples) if p.samples and p.cpu else None for p in phases]
    out: dict[str, Any] = {
        "requests": len(samples),
        "rounds": len(phases),
        "errors": len(errors),
        "error_examples": [e for e in errors if e][:3],
        "req_per_s": round(len(samples) / wall, 1) if wall else 0.0,
        "p50_ms": _ms(_pct(secs, 0.50)),
        "p99_ms": _ms(_pct(secs, 0.99)),
        "cpu_ms_per_req": round(cpu * 1000 / len(samples), 3) if samples and cpu else None,
        "cpu_ms_per_req_rounds": [None if x is None else round(x, 3) for x in per_round],
        "cpu_util": round(cpu / wall, 3) if wall else None,
        "foreign_cores": round(max(p.foreign for p in phases), 2),
        "foreign_cores_rounds": [round(p.foreign, 2) for p in phases],
        "rss_after_mib": round(phases[-1].rss_after, 1),
    }
    streams = [s for s in samples if s.event_latency]
    if streams:
        lat = [x for s in streams for x in s.event_latency]
        gaps = [x for s in streams for x in s.inter_arrival]
        out |= {
            "ttfb_p50_ms": _ms(_pct([s.ttfb for s in streams], 0.50)),
            "ttfb_p99_ms": _ms(_pct([s.ttfb for s in streams], 0.99)),
            "event_latency_p50_ms": _ms(_pct(lat, 0.50)),
            "event_latency_mean_ms": _ms(statistics.fmean(lat)),
            "event_latency_p99_ms": _ms(_pct(lat, 0.99)),
            "inter_arrival_added_mean_ms": _ms(statistics.fmean(gaps) - delay_s) if gaps else None,
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


@dataclass
class Options:
    requests: int
    stream_requests: int
    concurrency: int
    stream_events: int
    event_delay_ms: float
    streams: int
    probe: int
    rounds: int


async def measure_all(
    opts: Options, fake_url: str, bare: Target, bare_stream: Target, proxy: Target
) -> dict[str, Any]:
    delay = opts.event_delay_ms / 1000
    ev = opts.stream_events
    results: dict[str, Any] = {}
    rss_idle = {t.name: round(rss_mib(t.pid), 1) for t in (bare, bare_stream, proxy)}

    @dataclass(frozen=True)
    class Scenario:
        name: str
        target: Target | None
        base: str
        w: Workload
        role: str

    # Each comparison's two sides run back to back.
    scenarios = [
        Scenario("bare-post", bare, bare.base_url, PASS_POST, "baseline"),
        Scenario("openai-chat", proxy, proxy.base_url, CHAT, "cliproxy"),
        Scenario("anthropic-messages", proxy, proxy.base_url, MESSAGES, "cliproxy"),
        Scenario("direct-fake-stream", None, fake_url, PASS_STREAM, "reference"),
        Scenario("bare-stream", bare_stream, bare_stream.base_url, PASS_STREAM, "baseline"),
        Scenario("openai-chat-stream", proxy, proxy.base_url, CHAT_STREAM, "cliproxy"),
        Scenario("gemini-stream", proxy, proxy.base_url, GEMINI_STREAM, "cliproxy"),
    ]
    loaded: dict[str, list[Phase]] = {sc.name: [] for sc in scenarios}
    probes: dict[str, list[Phase]] = {sc.name: [] for sc in scenarios if sc.w.stream}
    rounds = opts.rounds
    n_post = -(-opts.requests // rounds)
    n_stream = -(-opts.stream_requests // rounds)
    n_probe = max(5, -(-opts.probe // rounds))
    c = opts.concurrency
    log(f"  {rounds} rounds; per round and scenario {n_post} requests or {n_stream} streams at "
        f"concurrency {c}, then {n_probe} streams at concurrency 1")  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        clients = {sc.name: await stack.enter_async_context(new_client(c)) for sc in scenarios}
        singles = {name: await stack.enter_async_context(new_client(1)) for name in probes}
        await wait_quiet()
        for sc in scenarios:
            await warm_up(clients[sc.name], sc.base + sc.w.path, sc.w, c, ev)
            if sc.w.stream:
                await warm_up(singles[sc.name], sc.base + sc.w.path, sc.w, 1, ev)
        # The machine's speed drifts by tens of percent over seconds (a VM; other work): short
        # chunks, the scenarios taking turns, let every scenario see the same mix of spells.
        for round_no in range(1, rounds + 1):
            log(f"  round {round_no}/{rounds}")
            await wait_quiet()
            for sc in scenarios:
                url = sc.base + sc.w.path
                n = n_stream if sc.w.stream else n_post
                phase = await measure_chunk(clients[sc.name], sc.target, url, sc.w, n, c, ev)
                loaded[sc.name].append(phase)
                if sc.w.stream:
                    probe = await measure_chunk(singles[sc.name], sc.target, url, sc.w, n_probe,
                                                1, ev)  # fmt: skip
                    probes[sc.name].append(probe)
    for sc in scenarios:
        results[sc.name] = summarize(loaded[sc.name], delay) | {
            "role": sc.role, "stream": sc.w.stream}  # fmt: skip
        if sc.w.stream:
            got = summarize(probes[sc.name], delay)
            results[sc.name]["probe"] = {k: got.get(k) for k in (
                "requests", "errors", "ttfb_p50_ms", "event_latency_p50_ms",
                "event_latency_mean_ms", "inter_arrival_added_mean_ms")}  # fmt: skip
    rss_after_run = {t.name: round(rss_mib(t.pid), 1) for t in (bare, bare_stream, proxy)}
    held = Workload(CHAT_STREAM.path, openai_body(True, hold=True), BEARER, True, b"")
    log(f"  {opts.streams} concurrently open streams (cliproxy)")
    open_proxy = await hold_streams(proxy, held, opts.streams)
    bare_held = Workload(STREAM_PATH, openai_body(True, hold=True), BEARER, True, b"")
    log(f"  {opts.streams} concurrently open streams (bare pass-through)")
    open_bare = await hold_streams(bare_stream, bare_held, opts.streams)
    add_comparisons(results)
    return {
        "scenarios": results,
        "rss_mib": {"idle": rss_idle, "after_run": rss_after_run,
                    "open_streams": {"cliproxy": open_proxy, "bare-stream": open_bare}},
    }  # fmt: skip


def add_comparisons(results: dict[str, Any]) -> None:
    """Ratios against the bare pass-through of the same run; stream deltas against the fake."""
    direct = results["direct-fake-stream"]
    for r in results.values():
        if r["role"] != "cliproxy":
            continue
        base = results["bare-stream" if r["stream"] else "bare-post"]
        # Over the rounds where neither side shared the cores with other work (all rounds
        # when there is none such): the ratio of the summed CPU/request figures.
        pairs = [
            (a, b, max(fa, fb) <= QUIET["cores"])
            for a, b, fa, fb in zip(r["cpu_ms_per_req_rounds"], base["cpu_ms_per_req_rounds"],
                                    r["foreign_cores_rounds"], base["foreign_cores_rounds"],
                                    strict=True)
            if a and b
        ]  # fmt: skip
        quiet = [(a, b) for a, b, ok in pairs if ok]
        used = quiet or [(a, b) for a, b, _ in pairs]
        r["vs_bare"] = {
            "cpu_per_req_ratio": (
                round(sum(a for a, _ in used) / sum(b for _, b in used), 3) if used else None
            ),
            "cpu_per_req_ratio_rounds": [round(a / b, 3) for a, b, _ in pairs],
            "quiet_rounds": len(quiet),
            "req_per_s_ratio": _ratio(r["req_per_s"], base["req_per_s"]),
            "p50_ratio": _ratio(r["p50_ms"], base["p50_ms"]),
        }
        if not r["stream"]:
            continue
        for key, ref in (("vs_direct", direct), ("vs_bare_stream", base)):
            r[key] = {
                "ttfb_added_ms_probe": _diff(r["probe"]["ttfb_p50_ms"],
                                             ref["probe"]["ttfb_p50_ms"]),
                "event_added_ms_probe": _diff(r["probe"]["event_latency_mean_ms"],
                                              ref["probe"]["event_latency_mean_ms"]),
                "ttfb_added_ms_loaded": _diff(r["ttfb_p50_ms"], ref["ttfb_p50_ms"]),
                "event_added_ms_loaded": _diff(r["event_latency_mean_ms"],
                                               ref["event_latency_mean_ms"]),
            }  # fmt: skip
    bare_stream = results["bare-stream"]
    for key, ref in (("vs_direct", direct),):
        bare_stream[key] = {
            "ttfb_added_ms_probe": _diff(bare_stream["probe"]["ttfb_p50_ms"],
                                         ref["probe"]["ttfb_p50_ms"]),
            "event_added_ms_probe": _diff(bare_stream["probe"]["event_latency_mean_ms"],
                                          ref["probe"]["event_latency_mean_ms"]),
        }  # fmt: skip


def budget(report: dict[str, Any], streams: int) -> list[tuple[str, str, bool | None]]:
    """(figure, value, within budget?) lines; None = not a budget figure at this setting."""
    sc = report["scenarios"]
    lines: list[tuple[str, str, bool | None]] = []
    for name in ("openai-chat", "anthropic-messages", "openai-chat-stream", "gemini-stream"):
        ratio = sc[name]["vs_bare"]["cpu_per_req_ratio"]
        ok = ratio is not None and ratio <= BUDGET_CPU_RATIO
        lines.append((f"CPU/request vs bare, {name}", f"{ratio} (≤ {BUDGET_CPU_RATIO})", ok))
    # "Streaming adds": the translation's share, i.e. over bare mitmdump streaming the same
    # upstream (what the architecture costs anyway); the figures over the fake itself are shown
    # alongside, without a verdict.
    for name in ("openai-chat-stream", "gemini-stream"):
        d, f = sc[name]["vs_bare_stream"], sc[name]["vs_direct"]
        ttfb, ev = d["ttfb_added_ms_probe"], d["event_added_ms_probe"]
        lines.append((f"TTFB added vs bare stream, {name}",
                      f"{ttfb} ms (< {BUDGET_TTFB_MS}; vs the fake itself "
                      f"{f['ttfb_added_ms_probe']} ms)",
                      ttfb is not None and ttfb < BUDGET_TTFB_MS))  # fmt: skip
        lines.append((f"per-event added vs bare stream, {name}",
                      f"{ev} ms (< {BUDGET_EVENT_MS}; vs the fake itself "
                      f"{f['event_added_ms_probe']} ms)",
                      ev is not None and ev < BUDGET_EVENT_MS))  # fmt: skip
    idle = report["rss_mib"]["idle"]["cliproxy"]
    lines.append(("RSS idle, cliproxy", f"{idle} MiB (< {BUDGET_RSS_IDLE_MIB})",
                  idle < BUDGET_RSS_IDLE_MIB))  # fmt: skip
    held = report["rss_mib"]["open_streams"]["cliproxy"]
    lines.append(
        (
            f"RSS with {held['opened']}/{streams} open streams, cliproxy",
            f"{held['rss_open_mib']:.1f} MiB (< {BUDGET_RSS_STREAMS_MIB} at 500)",
            held["rss_open_mib"] < BUDGET_RSS_STREAMS_MIB if streams >= 500 else None,
        )
    )
    return lines


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2f}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(x) for x in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ratio_cell(vs: dict[str, Any]) -> str | None:
    """The CPU ratio, with how many rounds it rests on when some were disturbed."""
    ratio = vs.get("cpu_per_req_ratio")
    if ratio is None:
        return None
    rounds = len(vs["cpu_per_req_ratio_rounds"])
    quiet = vs["quiet_rounds"]
    if quiet == rounds:
        return f"{ratio:.2f}"
    return f"{ratio:.2f} ({quiet}/{rounds} quiet)" if quiet else f"{ratio:.2f} (none quiet)"


def _spread(values: list[float | None]) -> str | None:
    got = [v for v in values if v is not None]
    return f"{min(got):.2f}-{max(got):.2f}" if len(got) > 1 else None


def render(report: dict[str, Any], opts: Options) -> str:
    sc = report["scenarios"]
    out = [f"cliproxy benchmark — {report['date']}, {report['machine']}",
           f"requests {opts.requests} (streams {opts.stream_requests}), concurrency "
           f"{opts.concurrency}, {opts.stream_events} events/stream "
           f"{opts.event_delay_ms} ms apart, "
           f"stream probe {opts.probe} at concurrency 1, {opts.rounds} interleaved rounds",
           ""]  # fmt: skip
    if "profile" in report:
        out.insert(2, "PROFILED RUN: cliproxy ran under cProfile; its CPU and latency figures "
                      "are inflated and are not budget figures")  # fmt: skip
    rows = []
    for name, r in sc.items():
        vs = r.get("vs_bare", {})
        rows.append([name, r["requests"], r["errors"], r["req_per_s"], r["p50_ms"], r["p99_ms"],
                     r["cpu_ms_per_req"], _spread(r["cpu_ms_per_req_rounds"]),
                     _ratio_cell(vs), vs.get("req_per_s_ratio"),
                     None if r["cpu_util"] is None else f"{r['cpu_util'] * 100:.0f}%",
                     r["foreign_cores"]])  # fmt: skip
    out.append(_table(["scenario", "n", "err", "req/s", "p50 ms", "p99 ms", "CPU ms/req",
                       "rounds", "CPU ratio", "req/s ratio", "mitm CPU", "other load"],
                      rows))  # fmt: skip
    out.append("  (ratios: cliproxy / bare pass-through of the same kind, same run, over the"
               " undisturbed rounds; rounds: spread of the per-round CPU/request; other load:"
               " most cores busy with processes the benchmark did not start, in any round)"
               )  # fmt: skip
    out.append("")
    rows = []
    for name, r in sc.items():
        if not r["stream"]:
            continue
        p = r["probe"]
        vd = r.get("vs_direct", {})
        vb = r.get("vs_bare_stream", {})
        rows.append([name, p["ttfb_p50_ms"], vd.get("ttfb_added_ms_probe"),
                     vb.get("ttfb_added_ms_probe"), p["event_latency_mean_ms"],
                     vd.get("event_added_ms_probe"), vb.get("event_added_ms_probe"),
                     r["ttfb_p50_ms"], r["event_latency_mean_ms"], r["event_latency_p99_ms"],
                     r["inter_arrival_added_mean_ms"]])  # fmt: skip
    out.append(_table(["stream", "TTFB ms (c=1)", "+ vs fake", "+ vs bare",
                       "event lat ms (c=1)", "+ vs fake", "+ vs bare",
                       "TTFB ms (loaded)", "event lat (loaded)", "p99", "gap - delay"],
                      rows))  # fmt: skip
    out.append("  (event lat: fake's write → client's read of that event, mean; probe at c=1)")
    out.append("")
    rss = report["rss_mib"]
    rows = [[name, rss["idle"][name], rss["after_run"][name]] for name in rss["idle"]]
    out.append(_table(["RSS MiB", "idle", "after run"], rows))
    for name, held in rss["open_streams"].items():
        out.append(f"  {name}: {held['opened']}/{held['streams']} streams open → "
                   f"{held['rss_open_mib']:.1f} MiB (before {held['rss_before_mib']:.1f}, "
                   f"after close {held['rss_after_close_mib']:.1f})"
                   + (f"; errors: {held['errors']}" if held["errors"] else ""))  # fmt: skip
    out.append("")
    out.append('Budget (docs/architecture.md "Performance budget"):')
    for what, value, ok in budget(report, opts.streams):
        mark = {True: "ok  ", False: "OVER", None: "n/a "}[ok]
        out.append(f"  [{mark}] {what}: {value}")
    for name, r in sc.items():
        for example in r.get("error_examples", []):
            out.append(f"  error in {name}: {example}")
    return "\n".join(out)


# ---------------------------------------------------------------- profile


def stop_and_read_profile(children: Children, proxy: Target, path: Path) -> list[str]:
    """Stop the profiled mitmdump cleanly (SIGINT: cProfile then writes its file) and
    summarize: the top functions by own time, then the project's own code by cumulative time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proxy.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proxy.proc.wait(timeout=30)
    children.stop(proxy.proc)
    if not path.exists():
        return ["(no profile written: mitmdump did not exit cleanly)"]
    import pstats  # only here: the profile mode is rare

    stats = pstats.Stats(str(path))
    rows = [(tt, ct, nc, _where(file, line, fn))
            for (file, line, fn), (_, nc, tt, ct, _) in stats.stats.items()]  # type: ignore[attr-defined]  # fmt: skip
    rows = [r for r in rows if "select.epoll" not in r[3]]  # waiting for I/O: idle, not work
    total = sum(r[0] for r in rows) or 1.0
    out = [f"cliproxy mitmdump profile (whole run incl. start-up and warm-ups, {total:.1f} s "
           "busy under cProfile, which inflates call-heavy code; % of busy time)",
           "  own time    %   calls  function"]  # fmt: skip
    for tt, _, nc, where in sorted(rows, reverse=True)[:25]:
        out.append(f"  {tt:8.3f} {100 * tt / total:4.1f} {nc:7d}  {where}")
    out.append("  project code by cumulative time:")
    ours = [r for r in rows if r[3].startswith(("addons/", "translators/"))]
    for _, ct, nc, where in sorted(ours, key=lambda r: -r[1])[:25]:
        out.append(f"  {ct:8.3f} {100 * ct / total:4.1f} {nc:7d}  {where}")
    return out


def _where(file: str, line: int, fn: str) -> str:
    root = str(ROOT) + "/"
    if file.startswith(root):
        file = file[len(root) :]
    elif "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    elif file.startswith("/"):
        file = "stdlib/" + Path(file).name
    return f"{file}:{line}({fn})"


# ---------------------------------------------------------------- main


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores {model}, Python {platform.python_version()}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000, help="measured requests per scenario")
    p.add_argument("--stream-requests", type=int, help="measured streams per scenario "
                   "(default: --requests)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=20, help="keep-alive client workers")
    p.add_argument("--stream-events", type=int, default=20, help="upstream events per stream")
    p.add_argument("--event-delay-ms", type=float, default=5.0, help="spacing of those events")
    p.add_argument("--streams", type=int, default=100, help="concurrently open streams (RSS)")
    p.add_argument("--probe", type=int, default=50, help="streams of the concurrency-1 probe")
    p.add_argument("--rounds", type=int, default=8, help="each scenario's requests are split "
                   "into this many chunks, the scenarios taking turns")  # fmt: skip
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each round, "
        "wait at most this many seconds for other processes to leave the cores idle",
    )
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="'idle' for --quiet-wait: "
        "at most this many cores busy with processes the benchmark did not start",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--profile", action="store_true", help="run cliproxy's mitmdump under "
                   "cProfile and print where its time went (its CPU figures are then inflated "
                   "by the profiler: not budget figures)")  # fmt: skip
    p.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("requests", "concurrency", "stream_events", "streams", "probe", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _raise_fd_limit(streams: int) -> None:
    """Each open stream is four sockets across the processes; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * streams + 1024))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fake:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fake(args.stream_events, args.event_delay_ms))
        return 0
    opts = Options(args.requests, args.stream_requests or args.requests, args.concurrency,
                   args.stream_events, args.event_delay_ms, args.streams, args.probe,
                   args.rounds)  # fmt: skip
    _raise_fd_limit(opts.streams)
    QUIET.update(wait_s=max(0.0, args.quiet_wait), cores=args.quiet_cores)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    children = Children()
    profile: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cliproxy-bench-") as tmp_name:
            tmp = Path(tmp_name)
            try:
                log("starting the fake upstream, two bare mitmdumps and cliproxy")
                _, fake_url = start_fake(children, tmp, opts.stream_events, opts.event_delay_ms)
                bare = start_bare(children, tmp, fake_url, "bare-post")
                bare_stream = start_bare(children, tmp, fake_url, "bare-stream",
                                         "--set", "stream_large_bodies=1")  # fmt: skip
                prof_path = tmp / "cliproxy.prof" if args.profile else None
                proxy = start_cliproxy(children, tmp, fake_url, prof_path)
                report = asyncio.run(measure_all(opts, fake_url, bare, bare_stream, proxy))
                if prof_path is not None:
                    profile = stop_and_read_profile(children, proxy, prof_path)
                proxy_log = proxy.log.read_text(errors="replace").strip()
            finally:
                children.stop_all()  # before the temp dir they work in goes
    except KeyboardInterrupt:
        log("interrupted; stopped the processes started")
        return 130
    report = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "options": asdict(opts)} | report  # fmt: skip
    report["budget"] = [{"figure": f, "value": v, "ok": ok} for f, v, ok in
                        budget(report, opts.streams)]  # fmt: skip
    if proxy_log:
        report["cliproxy_log_tail"] = proxy_log.splitlines()[-10:]
    if args.profile:
        report["profile"] = profile
    text = render(report, opts)
    if profile:
        text += "\n\n" + "\n".join(profile)
    print(json.dumps(report, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
