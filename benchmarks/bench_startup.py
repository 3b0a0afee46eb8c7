"""Import time and time to the first token in a fresh process: aioentra and its anchors.

Every sample is a new Python process that imports one library's entry point and then gets
one token from the local emulator: ``from aioentra import ClientSecret, TokenProvider``,
``from azure.identity.aio import ClientSecretCredential``, ``import msal``. The table gives
the import time, the modules it loaded, the time from the import's start to the first
token, and the process's whole wall time, as medians over interleaved rounds.

Run: ``python benchmarks/bench_startup.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/startup.md``.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from typing import Any

from _common import (
    TIMES,
    Check,
    Context,
    Failed,
    Json,
    Section,
    Table,
    emulator,
    fmt,
    fmt_ratio,
    median,
    new_app,
    ok,
    ratio,
    run_alone,
    target_for,
    worker_env,
)

API_URI = "api://bench-startup"

# Run with ``python -c``; the target is argv[1]. asyncio, json and time are imported before
# the clock starts, for every contender alike (the harness needs them).
PRELUDE = """
import asyncio, json, sys, time
T = json.loads(sys.argv[1])
modules = len(sys.modules)
started = time.perf_counter()
"""
SCRIPTS = {
    "aioentra": PRELUDE
    + """
from aioentra import ClientSecret, TokenProvider
imported = time.perf_counter()
loaded = len(sys.modules) - modules

async def first():
    async with TokenProvider(
        ClientSecret(T["secret"]), tenant_id=T["tenant_id"], client_id=T["client_id"],
        authority=T["base_url"], ca_file=T["ca_file"],
    ) as provider:
        await provider.get_token(T["scope"])

asyncio.run(first())
import aioentra
where = aioentra.__file__
""",
    "azure-identity": PRELUDE
    + """
from azure.identity.aio import ClientSecretCredential
imported = time.perf_counter()
loaded = len(sys.modules) - modules

async def first():
    async with ClientSecretCredential(
        T["tenant_id"], T["client_id"], T["secret"], authority=T["base_url"],
        connection_verify=T["ca_file"],
    ) as credential:
        await credential.get_token(T["scope"])

asyncio.run(first())
where = ""
""",
    "msal": PRELUDE
    + """
import msal
imported = time.perf_counter()
loaded = len(sys.modules) - modules
import requests
session = requests.Session()
session.trust_env = False
session.verify = T["ca_file"]
app = msal.ConfidentialClientApplication(
    T["client_id"], client_credential=T["secret"], authority=T["authority"],
    instance_discovery=False, http_client=session,
)
assert "access_token" in app.acquire_token_for_client([T["scope"]])
where = ""
""",
}
EPILOGUE = """
done = time.perf_counter()
print(json.dumps({"import": imported - started, "modules": loaded,
                  "first_token": done - started, "aioentra": where}))
"""

CONTENDERS = [
    ("aioentra: `from aioentra import ClientSecret, TokenProvider`", "aioentra", True),
    (
        "azure-identity aio: `from azure.identity.aio import ClientSecretCredential`",
        "azure-identity",
        False,
    ),
    ("msal: `import msal` (sync client)", "msal", False),
]


async def _sample(script: str, target: Json, env: dict[str, str], expect: str | None) -> Json:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPTS[script] + EPILOGUE,
        json.dumps(target),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError("the process did not finish in 120 s") from None
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip().splitlines()[-1])
    result: Json = json.loads(out.decode().strip().splitlines()[-1])
    if expect is not None and not result["aioentra"].startswith(expect):
        raise RuntimeError(f"imported aioentra from {result['aioentra']}, not {expect}")
    return {**result, "wall": wall}


async def section(ctx: Context) -> Section:
    rounds = 3 if ctx.quick else 9
    contenders: list[tuple[str, str, dict[str, str], str | None]] = []
    for label, script, ours in CONTENDERS:
        contenders.append((label, script, worker_env(None), None))
        if ours and ctx.baseline is not None:
            src = str(ctx.baseline.src)
            contenders.append((f"{label} @ {ctx.baseline.label}", script, worker_env(src), src))
    samples: dict[str, list[Any]] = {label: [] for label, *_ in contenders}
    async with emulator() as emu:
        api = emu.add_api(API_URI)
        target = target_for(emu, new_app(emu, api, "bench-startup"), f"{API_URI}/.default")
        rng = random.Random(3)
        for index in range(rounds + 1):  # the first round warms the bytecode caches, unused
            order = list(contenders)
            rng.shuffle(order)
            for label, script, env, expect in order:
                try:
                    sample: Any = await _sample(script, target, env, expect)
                except RuntimeError as exc:
                    sample = Failed(str(exc))
                if index:
                    samples[label].append(sample)

    def figure(label: str, key: str) -> float | None:
        return median([s[key] for s in ok(samples[label])])

    ours, theirs = CONTENDERS[0][0], CONTENDERS[1][0]
    rows = []
    for label, runs in samples.items():
        bad = next((str(s) for s in runs if isinstance(s, Failed)), None) if not ok(runs) else None
        if bad:
            rows.append([label, bad, "", "", "", ""])
            continue
        imp = figure(label, "import")
        rows.append(
            [
                label,
                fmt(None if imp is None else imp * 1e3, 0),
                fmt(figure(label, "modules"), 0),
                fmt_ratio(ratio(imp, figure(theirs, "import"))),
                fmt(_ms(figure(label, "first_token")), 0),
                fmt(_ms(figure(label, "wall")), 0),
            ]
        )
    table = Table(
        [
            "entry point",
            "import (ms)",
            "modules loaded",
            "÷ azure-identity aio's import",
            "import + first token (ms)",
            "process wall time (ms)",
        ],
        rows,
        title=f"A fresh process per sample (median of {rounds} interleaved rounds)",
    )
    checks = []
    for label in [ours] + ([f"{ours} @ {ctx.baseline.label}"] if ctx.baseline else []):
        r = ratio(figure(label, "import"), figure(theirs, "import"))
        checks.append(
            Check(
                "import no slower than azure-identity aio's"
                + ("" if " @ " not in label else f" ({label.split(' @ ')[1]})"),
                fmt_ratio(r),
                f"≤ 1.00{TIMES}",
                None if r is None else r <= 1.0,
            )
        )
    method = (
        f"{rounds} rounds after one unused warm-up round (which also fills the bytecode "
        "caches); in each round every entry point runs once, in a shuffled order, each in a "
        "new `python -c` process started from this benchmark, which gets a token from the "
        "emulator right after the import. The clock starts after `asyncio`, `json` and "
        "`time` are imported (for all alike). The first token includes building the client "
        "(msal's tenant discovery, aioentra's in its first request) and the token request; "
        "the wall time adds the interpreter's start and exit."
    )
    return Section("startup", "7. Import time and time to the first token", method, [table], checks)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
