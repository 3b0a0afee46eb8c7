"""A benchmark worker process (started by ``_common.Worker``).

It answers one JSON request per line on standard input, ``{"module", "function",
"kwargs"}``, by calling that function of a benchmark module (a coroutine function runs in a
fresh event loop), and writes one JSON line per answer: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": ...}``. The first line it writes says where it imported aioentra
from, so that a baseline worker (``PYTHONPATH`` set to a revision's ``src``) is checked to
run that revision. Anything else the process prints goes to standard error.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import traceback
from pathlib import Path


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # print() and C-level writes to fd 1 land on stderr
    sys.stdout = sys.stderr
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import aioentra

    protocol.write(
        json.dumps({"ready": True, "aioentra": aioentra.__file__, "pid": os.getpid()}) + "\n"
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            module = importlib.import_module(request["module"])
            function = getattr(module, request["function"])
            if inspect.iscoroutinefunction(function):
                result = asyncio.run(function(**request["kwargs"]))
            else:
                result = function(**request["kwargs"])
            answer = {"ok": True, "result": result}
        except Exception as exc:
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
