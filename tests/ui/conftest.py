"""Fixtures for the real-browser tests: a throwaway JupyterLab server and headless Debian Chromium.

The server runs from ``.venv`` with its own token, a free localhost port and fresh Jupyter config, data,
runtime and settings folders in a temporary directory, so nothing depends on the user's ``~/.jupyter``. It is
stopped whatever happens: first through ``POST /api/shutdown`` (which also shuts the kernels down), then by
signalling its process group, and finally any kernel it started that is still alive, by process id.

Chromium comes from Debian (``apt-get install chromium``); Playwright's own browser downloads cannot be fetched
here. Without ``/usr/bin/chromium`` (or ``$LOWLIGHT_CHROMIUM``) the tests are skipped, unless
``LOWLIGHT_UI_REQUIRED=1`` (set by ``make test-ui``) makes a missing browser a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The launch flags the machine's probe used: headless, no sandbox (we are root), and no background
# networking, which this machine's closed network would refuse many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]

# JupyterLab user settings that keep pop-ups and network look-ups out of the way of a test, and autosave off:
# the test opens the committed notebook itself, which must stay without outputs.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # Render every cell (JupyterLab 4 otherwise leaves off-screen cells out of the page, errors included).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def chromium_path() -> str | None:
    """The Debian Chromium executable, or None when it is not installed."""
    if os.environ.get("LOWLIGHT_CHROMIUM"):
        candidates = [os.environ["LOWLIGHT_CHROMIUM"]]  # when given, only this one
    else:
        candidates = ["/usr/bin/chromium", shutil.which("chromium")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Process ids of every live descendant of ``pid`` (read from /proc; empty where /proc is absent)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LabServer:
    """A running JupyterLab: ``url(path)`` gives an address with the token."""

    base: str
    token: str
    proc: subprocess.Popen
    log_path: Path

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        req = urllib.request.Request(
            f"{self.base}/api/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _stop(server: LabServer) -> None:
    proc = server.proc
    if proc.poll() is not None:
        return
    kids = _descendants(proc.pid)
    with contextlib.suppress(Exception):
        server.api("shutdown", method="POST", timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    # Kernels run in sessions of their own: end any the server left behind, by process id.
    for pid in kids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def chromium_launch() -> dict:
    """Keyword arguments for ``playwright.chromium.launch``; skips (or fails, see above) without chromium."""
    path = chromium_path()
    if path is None:
        msg = "Debian chromium is not installed (apt-get install chromium; `make test-ui` does it)"
        if os.environ.get("LOWLIGHT_UI_REQUIRED", "") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    return {"executable_path": path, "args": list(CHROMIUM_ARGS), "headless": True}


def start_lab(
    root: Path, tmp: Path, env_extra: dict[str, str] | None = None, timeout: float = 120.0
) -> LabServer:
    """Start JupyterLab on ``root`` with fresh Jupyter folders under ``tmp``; wait until it answers."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        jupyter = REPO / ".venv" / "bin" / "jupyter"
    token, port = secrets.token_hex(16), _free_port()
    dirs = {
        name: tmp / name
        for name in ("config", "data", "runtime", "ipython", "lab-settings", "lab-workspaces", "checkpoints")
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for rel, value in LAB_SETTINGS.items():
        path = dirs["lab-settings"] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    # No announcements feed (news_url=None cannot be given on the command line).
    (dirs["config"] / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"news_url": None}}))
    env = dict(os.environ)
    # tests/conftest.py sets MPLBACKEND=Agg for the unit tests; a kernel that inherits it draws no inline plots.
    env.pop("MPLBACKEND", None)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["lab-settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["lab-workspaces"]),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        HF_HUB_OFFLINE="1",
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.update(env_extra or {})
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False",
        # JupyterLab checkpoints a notebook when it opens it: keep that out of the repository.
        f"--FileCheckpoints.checkpoint_dir={dirs['checkpoints']}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI and these machines run as root
    log_path = tmp / "jupyter-lab.log"
    with open(log_path, "wb") as log:  # the server keeps its own copy of the file descriptor
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so that _stop can signal all of it
        )
    server = LabServer(base=f"http://127.0.0.1:{port}", token=token, proc=proc, log_path=log_path)
    try:
        _wait_until_up(server, timeout)
    except BaseException:
        _stop(server)
        raise
    return server


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {server.proc.returncode}:\n{server.log()[-4000:]}"
            )
        try:
            server.api("status", timeout=2)
            return
        except OSError:  # connection refused, timeouts, HTTP errors while it starts
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log()[-4000:]}")
        time.sleep(0.5)


@contextlib.contextmanager
def lab_server(root: Path, tmp: Path, env_extra: dict[str, str] | None = None):
    """Context manager around :func:`start_lab` that always stops the server."""
    server = start_lab(root, tmp, env_extra)
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture
def jupyter_lab(tmp_path, chromium_launch):
    """JupyterLab on the repository with LOWLIGHT_FAST=1 for its kernels; stopped at the end whatever happens."""
    with lab_server(REPO, tmp_path / "jupyter", {"LOWLIGHT_FAST": "1"}) as server:
        yield server
