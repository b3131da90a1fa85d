"""API: requests/s and p99 of two flavor endpoints against a Litestar hello-world route.

Two servers run in subprocesses on free 127.0.0.1 ports, each with ``uvicorn.run(app,
host="127.0.0.1", port=..., workers=1, log_level="warning", access_log=False)``:

- hello: its own ``Litestar([hello])`` with ``@get("/hello") async def hello() -> dict``;
- mvcore: ``create_app(Settings())`` with ``MVCORE_WATCH=off``, a temporary ``MVCORE_DATA_DIR`` and
  ``MVCORE_FLAVORS_DIR=<repo>/flavors`` (offline provider, no API key).

One load generator for all three routes: an async client with ``CONCURRENCY`` keep-alive
connections hammering one URL for a fixed time (quick: 2 s, full: 10 s in two interleaved rounds),
after a short warm-up.  By default the client is a bare asyncio-streams HTTP/1.1 loop ("raw");
``MVCORE_BENCH_API_CLIENT=httpx`` uses an ``httpx.AsyncClient`` instead.  httpx was the plan, but
its async client slows down sharply with concurrent requests (encode/httpx#3215): on the 2-core
reference machine it could not push either server past ~10% of a core, so every route measured
the client, not the server.  Whichever client is chosen is used for every route alike.
Besides rps and latency percentiles, each route also reports the server process's CPU time per
request (from /proc/<pid>/stat) -- the number a slow client or a busy machine cannot hide.
Run ``python -m benchmarks.bench_api --serve hello|mvcore --port N`` to start one server by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import FLAVORS_DIR, REPO, free_port, note, percentile, result, tiny

CONCURRENCY = 16
RPS_TARGET = (">=", 0.9)
P99_TARGET = ("<=", 1.12)  # 90% of the throughput ~ at most 1/0.9 of the latency (and of the CPU)
MAX_REQUESTS_PER_RUN = 500_000
UVICORN = {"workers": 1, "log_level": "warning", "access_log": False}
# Nothing that would make the app talk to the outside world or require a key.
_SCRUB = (
    "API_KEY",
    "REPLICATE_API_TOKEN",
    "MVCORE_REDIS_URL",
    "STORAGE_BUCKET",
    "MVCORE_PROVIDER",
    "MVCORE_PLUGINS",
    "MVCORE_STRICT_FLAVOR",
    "CORS_ORIGINS",
    "MV_DEBUG_MODE",
)


# ---- the servers ------------------------------------------------------------------------------------
def _hello_app() -> Any:
    from litestar import Litestar, get

    @get("/hello")
    async def hello() -> dict:  # type: ignore[type-arg]
        return {"hello": "world"}

    return Litestar(route_handlers=[hello])


def _mvcore_app() -> Any:
    from mvcore.api.app import create_app
    from mvcore.settings import Settings

    return create_app(Settings())


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = _hello_app() if kind == "hello" else _mvcore_app()
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN)  # type: ignore[arg-type]


@dataclass
class Server:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(kind: str, probe: str, workdir: Path) -> Server:
    return wait_ready(spawn(kind, workdir), probe)


def spawn(kind: str, workdir: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if kind == "mvcore":
        env.update(
            MVCORE_WATCH="off", MVCORE_DATA_DIR=str(workdir / "data"), MVCORE_FLAVORS_DIR=str(FLAVORS_DIR)
        )
    port = free_port()
    log = workdir / f"{kind}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_api", "--serve", kind, "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(kind, port, process, log)


def wait_ready(server: Server, probe: str) -> Server:
    kind, process, log = server.kind, server.process, server.log
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} server exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(server.url(probe), timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{kind} server did not answer {probe} within 60 s")


# ---- the load generator ------------------------------------------------------------------------------
@dataclass
class Load:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _hammer(url: str, seconds: float, concurrency: int, server: Server) -> Load:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        warmup_end = time.perf_counter() + min(0.5, seconds / 4)

        async def warm() -> None:
            while time.perf_counter() < warmup_end:
                await client.get(url)

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        latencies: list[float] = []
        errors = 0
        cpu_before = server.cpu_seconds()
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS_PER_RUN:
                sent = time.perf_counter()
                try:
                    response = await client.get(url)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu_before
    return Load(len(latencies), errors, elapsed, latencies, cpu)


async def _raw_hammer(url: str, seconds: float, concurrency: int, server: Server) -> Load:
    """The same loop on bare asyncio streams (keep-alive HTTP/1.1, Content-Length bodies only)."""
    path = url.split(str(server.port), 1)[1]
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAccept: */*\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    phase = {"measuring": False, "deadline": time.perf_counter() + min(0.5, seconds / 4)}

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            while time.perf_counter() < phase["deadline"] and len(latencies) < MAX_REQUESTS_PER_RUN:
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for row in head.split(b"\r\n")[1:]:
                    if row[:15].lower() == b"content-length:":
                        length = int(row[15:])
                    elif row[:18].lower() == b"transfer-encoding:":
                        raise RuntimeError(f"raw client cannot read a chunked answer from {path}")
                await reader.readexactly(length)
                if phase["measuring"]:
                    if head.startswith(b"HTTP/1.1 200"):
                        latencies.append(time.perf_counter() - sent)
                    else:
                        errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    phase.update(measuring=True, deadline=started + seconds)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Load(len(latencies), errors, elapsed, latencies, server.cpu_seconds() - cpu_before)


def client_kind() -> str:
    """``raw`` (default: bare asyncio streams, a fraction of httpx's CPU per request) or ``httpx``
    (``MVCORE_BENCH_API_CLIENT=httpx``)."""
    kind = os.environ.get("MVCORE_BENCH_API_CLIENT", "raw").strip().lower() or "raw"
    if kind not in ("httpx", "raw"):
        raise ValueError(f"MVCORE_BENCH_API_CLIENT must be httpx or raw, not {kind!r}")
    return kind


def hammer(
    url: str, seconds: float, server: Server, concurrency: int = CONCURRENCY, client: str = "raw"
) -> Load:
    generator = _raw_hammer if client == "raw" else _hammer
    return asyncio.run(generator(url, seconds, concurrency, server))


def _merge(loads: list[Load]) -> Load:
    return Load(
        sum(x.requests for x in loads),
        sum(x.errors for x in loads),
        sum(x.seconds for x in loads),
        [lat for x in loads for lat in x.latencies],
        sum(x.server_cpu_s for x in loads),
    )


def _lines(name: str, route: str, load: Load, hello: Load, client: str) -> list[dict[str, Any]]:
    def cpu_us(x: Load) -> float | None:
        return x.server_cpu_s / x.requests * 1e6 if x.requests else None

    client_bound = load.seconds and load.server_cpu_s / load.seconds < 0.85
    extra = {
        "route": route,
        "requests": load.requests,
        "errors": load.errors,
        "p50_ms": percentile(load.latencies, 50) * 1e3,
        "baseline_p50_ms": percentile(hello.latencies, 50) * 1e3,
        "server_cpu_us_per_req": cpu_us(load),
        "baseline_server_cpu_us_per_req": cpu_us(hello),
        "server_cpu_share": load.server_cpu_s / load.seconds,
        "concurrency": CONCURRENCY,
        "client": client,
    }
    hint = (
        "the server used < 85% of a core: the client (or other load on the machine) limits "
        "throughput; see the _server_cpu line"
        if client_bound
        else None
    )
    baseline = f"Litestar hello-world GET /hello (same uvicorn settings, same {client} client)"
    return [
        result(f"{name}_rps", load.rps, "req/s", baseline, hello.rps, target=RPS_TARGET, note=hint, **extra),
        result(
            f"{name}_p99",
            percentile(load.latencies, 99) * 1e3,
            "ms",
            baseline,
            percentile(hello.latencies, 99) * 1e3,
            target=P99_TARGET,
            route=route,
        ),
        # >= 90% of hello-world's throughput when the server is the bottleneck <=> <= 1/0.9 its CPU
        result(
            f"{name}_server_cpu",
            cpu_us(load),
            "us/req",
            baseline,
            cpu_us(hello),
            target=P99_TARGET,
            route=route,
            note="server process CPU (user+sys) per request",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    if tiny():
        seconds, rounds = 0.3, 1
    elif quick:
        seconds, rounds = 2.0, 1
    else:
        seconds, rounds = 10.0, 2
    routes = {
        "hello": "/hello",
        "api_get_config_flavors": "/api/mv/get_config_flavors",
        "api_flavor_example": "/api/mv/flavors/example",
    }
    client = client_kind()
    workdir = Path(tempfile.mkdtemp(prefix="mvcore-bench-api-"))
    servers: list[Server] = []
    try:
        hello_server = spawn("hello", workdir)  # both start at once; each is idle while the other is measured
        servers.append(hello_server)
        mv_server = spawn("mvcore", workdir)
        servers.append(mv_server)
        wait_ready(hello_server, "/hello")
        wait_ready(mv_server, "/health")
        for route in routes.values():
            probe = httpx.get((hello_server if route == "/hello" else mv_server).url(route), timeout=5)
            if probe.status_code != 200:
                raise RuntimeError(f"GET {route} answered {probe.status_code}: {probe.text[:300]}")
        loads: dict[str, list[Load]] = {name: [] for name in routes}
        for _ in range(rounds):  # interleaved, so drift on the machine hits every route alike
            for name, route in routes.items():
                server = hello_server if name == "hello" else mv_server
                loads[name].append(hammer(server.url(route), seconds / rounds, server, client=client))
        merged = {name: _merge(x) for name, x in loads.items()}
        for name, load in merged.items():
            note(
                f"api {name}: {load.rps:.0f} req/s, p99 {percentile(load.latencies, 99) * 1e3:.2f} ms, "
                f"server cpu {load.server_cpu_s / load.seconds:.0%}"
            )
            if not load.requests:
                raise RuntimeError(f"no successful request on {routes[name]} ({load.errors} errors)")
        lines = []
        for name in ("api_get_config_flavors", "api_flavor_example"):
            lines.extend(_lines(name, routes[name], merged[name], merged["hello"], client))
        return lines
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_api")
    parser.add_argument("--serve", choices=["hello", "mvcore"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.serve, args.port)


if __name__ == "__main__":
    main()
