"""What the benchmarks share: the contenders, the worker processes, timing, tables, targets.

Every benchmark module (``bench_*.py``) has its sections, ``async def ...(ctx: Context) ->
Section`` functions listed in ``SECTIONS``; ``run.py`` calls them and writes ``RESULTS.md``,
and each module's own ``main`` runs its sections alone (:func:`run_alone`).

The parent process holds the local server (the aioentra emulator: HTTPS on loopback) and
counts the requests it receives; the contenders run in worker processes (``_worker.py``),
one for this tree and, with ``--baseline REV``, one more whose ``aioentra`` is imported from
that git revision. Calls to the workers are interleaved in rounds (every contender once per
round, in an order that changes from round to round), so drift and neighbours' load hit
every contender alike; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import io
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "_worker.py"
RESULTS_DIR = HERE / "results"

Json = dict[str, Any]
TIMES = "\u00d7"  # the multiplication sign of ratios


# -- the local server and the contenders' view of it -----------------------------------------------


def target_for(emu: Any, app: Any, scope: str) -> Json:
    """What a worker needs to reach the emulator as ``app`` (JSON: it crosses processes)."""
    return {
        "base_url": emu.base_url,
        "tenant_id": emu.tenant_id,
        "authority": emu.authority,
        "token_endpoint": emu.token_endpoint,
        "ca_file": emu.ca_file,
        "client_id": app.client_id,
        "secret": app.secret or "",
        "scope": scope,
    }


def new_app(emu: Any, api: Any, name: str, *, latency: float = 0.0) -> Any:
    """A fresh app (its own client id, so its requests can be counted), granted ``api``."""
    from aioentra.emulator import Fault

    app = emu.add_app(name)
    emu.grant(app, api, [])
    if latency:
        emu.faults.add(
            Fault("token", "latency", delay=latency, count=None, client_id=app.client_id)
        )
    return app


def token_requests(emu: Any, client_id: str) -> int:
    return int(emu.requests.count(endpoint="token", client_id=client_id))


def new_provider(t: Json, **options: Any) -> Any:
    from aioentra import ClientSecret, TokenProvider

    return TokenProvider(
        ClientSecret(t["secret"]),
        tenant_id=t["tenant_id"],
        client_id=t["client_id"],
        authority=t["base_url"],
        ca_file=t["ca_file"],
        **options,
    )


def identity_credential(t: Json, **options: Any) -> Any:
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(
        t["tenant_id"],
        t["client_id"],
        t["secret"],
        authority=t["base_url"],
        connection_verify=t["ca_file"],
        **options,
    )


def msal_app(t: Json) -> Any:
    """msal's client (its constructor sends the tenant discovery: call it off the loop)."""
    import msal
    import requests

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=
    session.verify = t["ca_file"]
    return msal.ConfidentialClientApplication(
        t["client_id"],
        client_credential=t["secret"],
        authority=t["authority"],
        instance_discovery=False,
        http_client=session,
    )


def bearer_policy(credential: Any, scope: str) -> Any:
    """azure-core's ``AsyncBearerTokenCredentialPolicy`` over ``credential``."""
    from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy

    return AsyncBearerTokenCredentialPolicy(credential, scope)


def pipeline_request(url: str = "https://127.0.0.1/resource") -> Any:
    """A request as an Azure SDK pipeline hands it to its policies."""
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    return PipelineRequest(HttpRequest("GET", url), PipelineContext(None))


def policy_call(policy: Any) -> Callable[[], Awaitable[Any]]:
    """``await call()`` authorizes one request through ``policy`` (the request is reused)."""
    request = pipeline_request()
    on_request = policy.on_request
    return functools.partial(on_request, request)


def oauth2_grant(t: Json, token: Json | None = None) -> Any:
    """aiohttp-oauth2-client's client-credentials grant, trusting the emulator's CA."""
    import ssl

    import aiohttp
    from aiohttp_oauth2_client.grant.client_credentials import ClientCredentialsGrant

    grant = ClientCredentialsGrant(
        t["token_endpoint"], t["client_id"], t["secret"], token=token, scope=t["scope"]
    )
    # It opens a default ClientSession of its own: replace it by one that trusts the emulator.
    default = grant.session
    grant.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=t["ca_file"]))
    )
    grant._default_session = default  # closed with the grant (close_grant)
    return grant


async def close_grant(grant: Any) -> None:
    await grant._default_session.close()
    await grant.close()


def identity_fill(
    credential: Any, t: Json, scopes: Iterable[str], *, token: str, expires_in: int = 3599
) -> None:
    """Write tokens into azure-identity's cache the way its AadClient stores a response."""
    client = credential._client
    cache = client._get_cache()
    now = int(time.time())
    for scope in scopes:
        cache.add(
            event={
                "client_id": client._get_cache_client_id(),
                "response": {
                    "access_token": token,
                    "expires_in": expires_in,
                    "token_type": "Bearer",
                },
                "scope": [scope],
                "token_endpoint": t["token_endpoint"],
            },
            now=now,
        )


def msal_fill(client: Any, t: Json, scopes: Iterable[str], *, token: str) -> None:
    """Write tokens into msal's cache the way msal stores a response."""
    now = int(time.time())
    for scope in scopes:
        client.token_cache.add(
            {
                "client_id": t["client_id"],
                "scope": [scope],
                "token_endpoint": t["token_endpoint"],
                "response": {"access_token": token, "expires_in": 3599, "token_type": "Bearer"},
            },
            now=now,
        )


def aioentra_fill(provider: Any, scopes: Iterable[str], *, token: str) -> None:
    """Store tokens as a successful request does (the source's ``_fetched`` and cell ``put``)."""
    from aioentra._flight import FetchReason
    from aioentra._token import TokenResponse

    clock = provider._clock
    for scope in scopes:
        response = TokenResponse(access_token=token, expires_in=3599)
        fetched = provider._fetched(
            scope, response, FetchReason.COLD, clock.monotonic(), clock.time()
        )
        provider._flight.put(scope, fetched)


def aioentra_seed_due(provider: Any, scope: str, *, token: str, expires_in: float) -> None:
    """Put ``provider`` in the state a long-running process reaches near a token's end: the
    held token has ``expires_in`` seconds left and its refresh-ahead is due now."""
    from aioentra._flight import FetchReason
    from aioentra._token import TokenResponse

    clock = provider._clock
    now, wall = clock.monotonic(), clock.time()
    fetched = provider._fetched(
        scope, TokenResponse(access_token=token, expires_in=expires_in), FetchReason.COLD, now, wall
    )
    value = dataclasses.replace(fetched.value, refresh_on=wall)
    cached = dataclasses.replace(fetched.cached or fetched.value, refresh_on=wall)
    provider._flight.put(
        scope, dataclasses.replace(fetched, value=value, cached=cached, fresh_until=now)
    )


@contextlib.asynccontextmanager
async def calling(
    t: Json, contender: str
) -> AsyncIterator[tuple[Any, Callable[[], Awaitable[Any]]]]:
    """``(source, call)``: ``await call()`` gets a token for ``t["scope"]`` from one of

    * ``aioentra``: ``TokenProvider.get_token``;
    * ``identity``: azure-identity aio's ``ClientSecretCredential.get_token``;
    * ``identity policy``: azure-core's ``AsyncBearerTokenCredentialPolicy.on_request`` over
      azure-identity (the call authorizes a request, as an Azure SDK client does);
    * ``aioentra policy``: that policy over ``TokenProvider.as_azure_credential()``.

    ``source`` is the provider or credential (to seed its cache).
    """
    scope = t["scope"]
    if contender.startswith("aioentra"):
        async with new_provider(t) as provider:
            if contender == "aioentra":
                yield provider, functools.partial(provider.get_token, scope)
            else:
                policy = bearer_policy(provider.as_azure_credential(), scope)
                yield provider, policy_call(policy)
    elif contender.startswith("identity"):
        async with identity_credential(t) as credential:
            if contender == "identity":
                yield credential, functools.partial(credential.get_token, scope)
            else:
                yield credential, policy_call(bearer_policy(credential, scope))
    else:
        raise ValueError(f"unknown contender {contender!r}")


def filler_scopes(count: int) -> list[str]:
    return [f"api://bench-filler-{i}/.default" for i in range(count)]


# -- the floor: what any async cache must at least do ----------------------------------------------


class FloorCache:
    """An awaited coroutine returning a dict value (``clock=True``: after a clock compare)."""

    def __init__(self, size: int, value: Any, *, clock: bool) -> None:
        deadline = time.monotonic() + 3600
        self._slots = {f"api://floor-{i}/.default": (deadline, value) for i in range(size - 1)}
        self._slots["api://floor-hit/.default"] = (deadline, value)
        self.get_token = self._with_clock if clock else self._lookup

    async def _lookup(self, scope: str) -> Any:
        return self._slots[scope][1]

    async def _with_clock(self, scope: str) -> Any:
        slot = self._slots.get(scope)
        if slot is not None and _monotonic() < slot[0]:
            return slot[1]
        raise LookupError(scope)


FLOOR_SCOPE = "api://floor-hit/.default"
_monotonic = time.monotonic


# -- timing ----------------------------------------------------------------------------------------


async def per_call_async(
    call: Callable[..., Awaitable[Any]],
    *args: Any,
    runs: int = 3,
    budget: float = 0.1,
    max_calls: int = 500_000,
    warmup: int = 200,
) -> float:
    """Median microseconds per ``await call(*args)`` over ``runs`` runs, each bounded in calls
    and in time."""
    deadline = time.perf_counter() + budget
    for done in range(warmup):
        await call(*args)
        if done % 16 == 15 and time.perf_counter() > deadline:
            break
    results = []
    for _ in range(runs):
        gc.collect()
        calls = 0
        started = time.perf_counter()
        deadline = started + budget
        while calls < max_calls:
            await call(*args)
            calls += 1
            if calls % 16 == 0 and time.perf_counter() > deadline:
                break
        results.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(results)


def per_call_sync(
    call: Callable[..., Any],
    *args: Any,
    runs: int = 3,
    budget: float = 0.1,
    max_calls: int = 500_000,
    warmup: int = 200,
) -> float:
    deadline = time.perf_counter() + budget
    for done in range(warmup):
        call(*args)
        if done % 16 == 15 and time.perf_counter() > deadline:
            break
    results = []
    for _ in range(runs):
        gc.collect()
        calls = 0
        started = time.perf_counter()
        deadline = started + budget
        while calls < max_calls:
            call(*args)
            calls += 1
            if calls % 16 == 0 and time.perf_counter() > deadline:
                break
        results.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(results)


class Latencies:
    """Caller latencies as a histogram of 0.1 µs buckets (bounded memory at any call rate)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.calls = 0

    def add(self, seconds: float) -> None:
        key = int(seconds * 1e7)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.calls += 1

    def summary(self) -> Json:
        if not self.calls:
            return {"calls": 0, "p50": None, "p99": None, "max": None, "over_1ms": 0}
        keys = sorted(self.counts)
        wanted = {"p50": 0.50 * self.calls, "p99": 0.99 * self.calls}
        found: dict[str, float] = {}
        seen = 0
        for key in keys:
            seen += self.counts[key]
            for name, rank in wanted.items():
                if name not in found and seen >= rank:
                    found[name] = key / 1e7
        return {
            "calls": self.calls,
            "p50": found["p50"],
            "p99": found["p99"],
            "max": keys[-1] / 1e7,
            "over_1ms": sum(n for key, n in self.counts.items() if key >= 10_000),
            "over_10ms": sum(n for key, n in self.counts.items() if key >= 100_000),
            "over_1s": sum(n for key, n in self.counts.items() if key >= 10_000_000),
        }


async def drive_callers(
    call: Callable[[], Awaitable[Any]],
    *,
    tasks: int,
    seconds: float,
    interval: float = 0.01,
    grace: float = 10.0,
    on_result: Callable[[Any], None] | None = None,
) -> Json:
    """``tasks`` callers, each awaiting ``call()`` then sleeping ``interval``, for ``seconds``.

    Bounded: after ``seconds`` no caller starts a new call; calls still running ``grace``
    seconds later are cancelled and counted as ``unfinished``.
    """
    latencies = Latencies()
    errors: dict[str, int] = {}
    stop = time.monotonic() + seconds
    perf = time.perf_counter

    async def caller() -> None:
        while time.monotonic() < stop:
            started = perf()
            try:
                result = await call()
            except Exception as exc:
                latencies.add(perf() - started)
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
            else:
                latencies.add(perf() - started)
                if on_result is not None:
                    on_result(result)
            await asyncio.sleep(interval)

    running = [asyncio.ensure_future(caller()) for _ in range(tasks)]
    await asyncio.sleep(seconds)
    _, pending = await asyncio.wait(running, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {
        **latencies.summary(),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "unfinished": len(pending),
    }


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def episodes(times: Sequence[float], gap: float) -> int:
    """Clusters of request times no more than ``gap`` seconds apart (refresh episodes)."""
    count, last = 0, -math.inf
    for when in sorted(times):
        if when - last > gap:
            count += 1
        last = when
    return count


# -- worker processes ------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """One benchmark worker process (``_worker.py``): calls run one at a time, in order."""

    def __init__(self, name: str, env: dict[str, str], expect_prefix: str | None) -> None:
        self.name = name
        self._env = env
        self._expect = expect_prefix
        self._process: asyncio.subprocess.Process | None = None
        self._log: Any = None
        self.aioentra_file = ""

    async def start(self) -> None:
        # The worker's stderr, read back on failures; closed by close().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self._env,
            cwd=str(ROOT),
            limit=2**24,
        )
        ready = await self._read(timeout=120)
        self.aioentra_file = ready["aioentra"]
        if self._expect is not None and not self.aioentra_file.startswith(self._expect):
            raise WorkerError(
                f"worker {self.name} imported aioentra from {self.aioentra_file}, "
                f"not from {self._expect}"
            )

    async def _read(self, timeout: float) -> Json:
        assert self._process is not None
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not line:
            raise WorkerError(f"worker {self.name} exited: {self._stderr_tail()}")
        message: Json = json.loads(line)
        return message

    def _stderr_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    async def call(self, module: str, function: str, timeout: float, **kwargs: Any) -> Any:
        if self._process is None or self._process.returncode is not None:
            await self.start()
        assert self._process is not None
        assert self._process.stdin is not None
        request = {"module": module, "function": function, "kwargs": kwargs}
        self._process.stdin.write((json.dumps(request) + "\n").encode())
        await self._process.stdin.drain()
        try:
            answer = await self._read(timeout)
        except asyncio.TimeoutError:
            await self.kill()
            raise WorkerError(f"{module}.{function} took more than {timeout:.0f} s") from None
        if not answer["ok"]:
            raise WorkerError(answer["error"])
        return answer["result"]

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 15)
            except asyncio.TimeoutError:
                await self.kill()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclasses.dataclass
class Contender:
    """One contender of a benchmark: a function of a benchmark module run in a worker."""

    label: str
    function: str
    kwargs: Json = dataclasses.field(default_factory=dict)
    ours: bool = False
    """An aioentra contender: with ``--baseline`` it also runs from the baseline revision."""
    flavour: str = "current"


class Pool:
    """The workers of one benchmark: this tree's, and the baseline's if there is one."""

    def __init__(self, ctx: Context, module: str) -> None:
        self.ctx = ctx
        self.module = module
        self.workers: dict[str, Worker] = {}

    async def __aenter__(self) -> Pool:
        self.workers["current"] = Worker("current", worker_env(None), None)
        await self.workers["current"].start()
        if self.ctx.baseline is not None:
            src = str(self.ctx.baseline.src)
            self.workers["baseline"] = Worker("baseline", worker_env(src), src)
            await self.workers["baseline"].start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for worker in self.workers.values():
            await worker.close()

    def expand(self, contenders: Sequence[Contender]) -> list[Contender]:
        """The contenders, each of ours followed by its baseline twin (with ``--baseline``)."""
        out: list[Contender] = []
        for contender in contenders:
            out.append(contender)
            if contender.ours and self.ctx.baseline is not None:
                out.append(
                    dataclasses.replace(
                        contender,
                        label=f"{contender.label} @ {self.ctx.baseline.label}",
                        flavour="baseline",
                    )
                )
        return out

    async def call(self, contender: Contender, timeout: float = 300, **kwargs: Any) -> Any:
        worker = self.workers[contender.flavour]
        return await worker.call(
            self.module, contender.function, timeout, **{**contender.kwargs, **kwargs}
        )

    async def rounds(
        self,
        contenders: Sequence[Contender],
        count: int,
        *,
        args: Json | None = None,
        timeout: float = 300,
        before: Callable[[Contender, int], Awaitable[Json]] | None = None,
        after: Callable[[Contender, int, Any], Awaitable[Any]] | None = None,
    ) -> dict[str, list[Any]]:
        """Every contender once per round (``count`` rounds), in a shuffled order; results by
        label. ``args`` are keyword arguments of every call.

        ``before(contender, round)`` returns extra keyword arguments for the call (a fresh app,
        say); ``after(contender, round, result)`` turns the worker's result into the sample (by
        adding what the server counted, say). A contender that fails gets a :class:`Failed`
        as the sample.
        """
        expanded = self.expand(contenders)
        samples: dict[str, list[Any]] = {c.label: [] for c in expanded}
        rng = random.Random(7)
        for index in range(count):
            order = list(expanded)
            rng.shuffle(order)
            for contender in order:
                extra = await before(contender, index) if before is not None else {}
                try:
                    result = await self.call(contender, timeout, **(args or {}), **extra)
                except WorkerError as exc:
                    samples[contender.label].append(Failed(str(exc)))
                    continue
                if after is not None:
                    result = await after(contender, index, result)
                samples[contender.label].append(result)
        return samples


@dataclasses.dataclass
class Failed:
    """A contender's failed run (its cell says why)."""

    reason: str

    def __str__(self) -> str:
        first = self.reason.strip().splitlines()[0] if self.reason.strip() else "failed"
        return f"failed: {first[:120]}"


def ok(samples: Sequence[Any]) -> list[Any]:
    return [s for s in samples if not isinstance(s, Failed)]


def failure(samples: Sequence[Any]) -> str | None:
    bad = [s for s in samples if isinstance(s, Failed)]
    return str(bad[0]) if bad and not ok(samples) else None


def worker_env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


# -- the baseline revision -------------------------------------------------------------------------


@dataclasses.dataclass
class Baseline:
    rev: str
    label: str
    folder: Path

    @property
    def src(self) -> Path:
        return self.folder / "src"


def extract_baseline(rev: str) -> Baseline:
    """``git archive REV src`` unpacked into a temporary folder."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    label = git("rev-parse", "--short", commit)
    folder = Path(tempfile.mkdtemp(prefix="aioentra-baseline-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Python before 3.10.12 / 3.11.4: our own repository's archive
            tar.extractall(folder)
    if not (folder / "src" / "aioentra" / "__init__.py").is_file():
        raise SystemExit(f"{rev}: no src/aioentra in that revision")
    return Baseline(rev, label, folder)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


# -- the run's context -----------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    quick: bool = False
    baseline: Baseline | None = None

    def pool(self, module: str) -> Pool:
        return Pool(self, module)


# -- results ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    """One target: the figure, what it is compared with, and whether it is met."""

    name: str
    figure: str
    target: str
    met: bool | None
    """``None``: the figure is missing (a contender failed)."""

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else ("met" if self.met else "**not met**")


@dataclasses.dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    title: str = ""

    def render(self) -> str:
        lines = [f"### {self.title}", ""] if self.title else []
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclasses.dataclass
class Section:
    key: str
    title: str
    method: str
    tables: list[Table]
    checks: list[Check] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        parts = [f"## {self.title}", self.method]
        parts += [table.render() for table in self.tables]
        if self.checks:
            parts.append(
                Table(
                    ["target", "figure", "target value", "verdict"],
                    [[c.name, c.figure, c.target, c.verdict] for c in self.checks],
                ).render()
            )
        parts += self.notes
        parts.append(f"_Section time: {self.seconds:.0f} s._")
        return "\n\n".join(p for p in parts if p)


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    if value != 0 and abs(value) >= 100:
        text = f"{value:,.0f}"
    elif value != 0 and abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.{digits}f}"
    return f"{text}{unit}"


def paired_ratio(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """The median over rounds of ``a / b`` in the same round (the lists are in round order;
    a failed sample drops its round)."""
    ratios = [
        x / y
        for x, y in zip(a, b, strict=False)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y
    ]
    return statistics.median(ratios) if ratios else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}{TIMES}"
    if value >= 10:
        return f"{value:.1f}{TIMES}"
    return f"{value:.2f}{TIMES}"


def callers_label(count: int) -> str:
    return f"{count:,} caller{'' if count == 1 else 's'}"


# -- the machine and the versions ------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def versions() -> list[tuple[str, str]]:
    found = [("aioentra", aioentra_revision())]
    for name in (
        "msal",
        "azure-identity",
        "azure-core",
        "azure-keyvault-secrets",
        "aiohttp",
        "aiohttp-oauth2-client",
        "redis",
        "cryptography",
        "PyJWT",
    ):
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    server = shutil.which("redis-server")
    if server is not None:
        out = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
        version = next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())
        found.append(("redis-server", version))
    return found


def aioentra_revision() -> str:
    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return metadata.version("aioentra")
    state = ", uncommitted changes in src" if dirty else ""
    return f"{metadata.version('aioentra')} (git {rev}{state})"


def environment_lines(load_at_start: str, load_at_end: str) -> list[str]:
    rows = [
        [
            "machine",
            f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        ],
        [
            "load average (1 / 5 / 15 min)",
            f"{load_at_start} at the start, {load_at_end} at the end",
        ],
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        *([name, version] for name, version in versions()),
    ]
    return [Table(["", ""], rows).render()]


# -- running one section alone ---------------------------------------------------------------------


def run_alone(
    sections: Sequence[Callable[[Context], Awaitable[Section]]], script: str, doc: str | None
) -> int:
    """``main`` of a benchmark module: its sections alone, printed and written to
    ``results/<name>.md`` (``bench_<name>.py``)."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer sizes, rounds")
    parser.add_argument("--baseline", metavar="REV", help="also run aioentra from this revision")
    args = parser.parse_args()
    baseline = extract_baseline(args.baseline) if args.baseline else None
    ctx = Context(quick=args.quick, baseline=baseline)
    start_load = load_average()

    async def run_all() -> list[Section]:
        return [await timed(section, ctx) for section in sections]

    try:
        results = asyncio.run(run_all())
    finally:
        if baseline is not None:
            shutil.rmtree(baseline.folder, ignore_errors=True)
    name = Path(script).stem.removeprefix("bench_")
    command = " ".join(
        [f"python benchmarks/{Path(script).name}"]
        + (["--quick"] if args.quick else [])
        + ([f"--baseline {args.baseline}"] if args.baseline else [])
    )
    report = "\n\n".join(
        [
            f"# {results[0].title if len(results) == 1 else name.replace('_', ' ').capitalize()}",
            f"Generated by `{command}`.",
            *environment_lines(start_load, load_average()),
            *(result.render() for result in results),
        ]
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    return 0


async def timed(section: Callable[[Context], Awaitable[Section]], ctx: Context) -> Section:
    started = time.perf_counter()
    result = await section(ctx)
    result.seconds = time.perf_counter() - started
    return result


@contextlib.asynccontextmanager
async def emulator(**settings: Any) -> AsyncIterator[Any]:
    from aioentra.emulator import Emulator

    async with Emulator(**settings) as emu:
        yield emu


def set_token_lifetime(emu: Any, seconds: int) -> None:
    """Tokens shorter than msal's five minutes, which the emulator's setter refuses: the
    benchmarks that want rollovers every few seconds set the state directly."""
    emu.state.token_lifetime = int(seconds)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
