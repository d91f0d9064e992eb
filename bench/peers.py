"""Install the peer gateways into ignored folders under bench/, and report tool versions.

LiteLLM's proxy goes into its own virtualenv (``bench/.venv-litellm``) so its many pinned
dependencies never touch the project's; Portkey's Node gateway goes into
``bench/.venv-portkey/node_modules``. Both folders match ``bench/.venv-*/`` in .gitignore.
Installs use the ordinary clients (pip, npm) and the registries only.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from systems import LITELLM_VENV, PORTKEY_DIR, PORTKEY_ENTRY, PYTHON, ROOT


def _run(cmd: list[str], timeout: float) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def ensure_wrk() -> str:
    """wrk drives the plain-POST scenarios; as root, install Debian's package when missing."""
    if shutil.which("wrk"):
        return ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "wrk not found: apt-get install -y wrk"
    print("installing wrk (apt-get) ...", flush=True)
    _run(["apt-get", "update", "-qq"], 600)
    code, out = _run(["apt-get", "install", "-y", "-qq", "wrk"], 600)
    return "" if code == 0 and shutil.which("wrk") else f"wrk install failed: {out[-300:]}"


def install_litellm() -> str:
    """Create bench/.venv-litellm with ``litellm[proxy]``; returns "" or the failure."""
    if (LITELLM_VENV / "bin" / "litellm").exists():
        return ""
    print("installing litellm[proxy] into bench/.venv-litellm (a few minutes) ...", flush=True)
    code, out = _run([PYTHON, "-m", "venv", str(LITELLM_VENV)], 120)
    if code == 0:
        code, out = _run([str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet",
                          "litellm[proxy]"], 900)
    return "" if code == 0 else f"litellm install failed: {out[-300:]}"


HONO_NODE_SERVER = "1.14.1"


def install_portkey() -> str:
    """npm-install @portkey-ai/gateway under bench/.venv-portkey; returns "" or the failure.

    @hono/node-server is pinned to 1.14.1: from 1.14.2 its light-weight global ``Response``
    keeps ``new Response(body, upstreamResponse)``'s headers as the upstream fetch() response's
    own (immutable) headers object, and Portkey then appends its x-portkey-* headers to it
    (``ResponseService.updateHeaders``): streamed chat and embeddings fail with "TypeError:
    immutable", HTTP 500 "Something went wrong" (Portkey-AI/gateway#1389, #1550). 1.14.1 copies
    the headers. An install with another version is replaced.
    """
    installed = PORTKEY_DIR / "node_modules" / "@hono" / "node-server" / "package.json"
    if PORTKEY_ENTRY.exists() and installed.exists() and \
            json.loads(installed.read_text()).get("version") == HONO_NODE_SERVER:
        return ""
    if shutil.which("npm") is None:
        return "npm not found (Node 20 needed for the Portkey peer)"
    print("installing @portkey-ai/gateway into bench/.venv-portkey ...", flush=True)
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    (PORTKEY_DIR / "package.json").write_text(json.dumps({
        "private": True,
        "dependencies": {"@portkey-ai/gateway": "^1.15.2", "@hono/node-server": HONO_NODE_SERVER},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }, indent=1))
    code, out = _run(["npm", "install", "--prefix", str(PORTKEY_DIR), "--no-audit", "--no-fund"],
                     600)
    return "" if code == 0 else f"portkey install failed: {out[-300:]}"


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    nproc = len(os.sched_getaffinity(0))
    return f"nproc {nproc}, {cpu}, {mem_kb / 1024 / 1024:.1f} GiB RAM"


def _pkg(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions of everything whose speed the figures depend on."""
    _, rev = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], 10)
    _, dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gateway"], 10)
    out = {
        "python": platform.python_version(),
        "gateway": f"{_pkg('llm-guardrail-gateway')} ({rev}{'+dirty' if dirty else ''})",
        "uvicorn": _pkg("uvicorn"), "uvloop": _pkg("uvloop"), "aiohttp": _pkg("aiohttp"),
        "starlette": _pkg("starlette"),
    }
    code, ver = _run([str(LITELLM_VENV / "bin" / "python"), "-c",
                      "import importlib.metadata as m; print(m.version('litellm'))"], 30)
    out["litellm (peer)"] = ver if code == 0 else "not installed"
    code, node = _run(["node", "--version"], 10)
    out["node"] = node if code == 0 else "not installed"
    pkg = PORTKEY_ENTRY.parent.parent / "package.json"
    out["portkey"] = json.loads(pkg.read_text())["version"] if pkg.exists() else "not installed"
    code, wrk = _run(["wrk", "-v"], 10)
    out["wrk"] = wrk.split()[1] if wrk.startswith("wrk ") else "?"
    return out
