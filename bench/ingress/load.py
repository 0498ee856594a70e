"""Drive a server with wrk (when installed) or with bench.loadgen, in a separate process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["closed_loop", "fixed_rate"]

PATH = "/webhooks/web/bench"

# One wrk thread: the counter is unique within the run; args[1] is the run id.
_WRK_SCRIPT = """
local n = 0
local run = "r"
local convs = %d
init = function(args) run = args[1] or "r" end
request = function()
  n = n + 1
  local c = n %% convs
  local body = string.format(
    '{"conversation_id":"c%%d","user_id":"u%%d","text":"hello %%d","client_msg_id":"%%s-%%d"}',
    c, c, n, run, n)
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"}, body)
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return round(float(value) * _UNITS[unit], 2)


def _wrk(port: int, run: str, seconds: float, concurrency: int, conversations: int,
         workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(_WRK_SCRIPT % (conversations, PATH), "utf-8")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "-s",
         str(script), f"http://127.0.0.1:{port}{PATH}", "--", run],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {"tool": "wrk", "requests": int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
            "p50_ms": _ms(dist["50"]), "p99_ms": _ms(dist["99"]),
            "errors": int(errors[1]) if errors else 0,
            "socket_errors": socket_errors[1] if socket_errors else ""}  # type: ignore[dict-item]


def _loadgen(port: int, run: str, seconds: float, concurrency: int, conversations: int,
             rate: float = 0.0) -> dict[str, float]:
    args = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", PATH,
            "--run", run, "--duration", str(seconds), "--concurrency", str(concurrency),
            "--conversations", str(conversations)]
    if rate:
        args += ["--rate", str(rate)]
    out = subprocess.run(args, capture_output=True, text=True,
                         timeout=seconds + 60, check=True).stdout
    return {"tool": "bench.loadgen", **json.loads(out.strip().splitlines()[-1])}


def closed_loop(port: int, run: str, seconds: float, concurrency: int, conversations: int,
                workdir: Path, use_wrk: bool = True) -> dict[str, float]:
    """Fixed concurrency, as fast as the server answers."""
    if use_wrk and shutil.which("wrk"):
        return _wrk(port, run, seconds, concurrency, conversations, workdir)
    return _loadgen(port, run, seconds, concurrency, conversations)


def fixed_rate(port: int, run: str, seconds: float, rate: float, conversations: int
               ) -> dict[str, float]:
    """Open loop at ``rate`` requests/s; latency from the intended send time."""
    return _loadgen(port, run, seconds, 64, conversations, rate)
