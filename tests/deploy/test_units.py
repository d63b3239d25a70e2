"""The deployment in ``deploy/`` runs as written: the exact commands of the
systemd units, with the example environment file, against a throwaway
PostgreSQL, serve the API with the read models kept by the separate worker."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/ledger"
START_TIMEOUT_S = 120


def unit_service(name: str) -> dict[str, str]:
    """The ``[Service]`` section of a unit file (systemd's key=value lines)."""
    section, found = "", {}
    for raw in (DEPLOY / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def environment_file(path: Path) -> dict[str, str]:
    """systemd's ``EnvironmentFile=`` format: KEY=value lines, # comments."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def command_of(unit: str) -> list[str]:
    """The unit's ``ExecStart``, with the install directory's venv replaced by ours."""
    argv = shlex.split(unit_service(unit)["ExecStart"])
    assert argv[0] == f"{INSTALL_DIR}/.venv/bin/ledger", argv
    script = Path(sys.executable).parent / "ledger"
    return [str(script), *argv[1:]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def started(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield
            assert process.poll() is None, log.read_text()
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("\n".join(p.read_text() for p in logs))


def test_the_units_commands_serve_with_a_separate_projection_worker(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    api, worker = unit_service("ledger-api.service"), unit_service("ledger-project.service")
    assert api["EnvironmentFile"] == worker["EnvironmentFile"] == "/etc/ledger/ledger.env"
    settings = environment_file(DEPLOY / "ledger.env.example")
    assert settings["LEDGER_IN_PROCESS_PROJECTIONS"] == "false"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(settings)
    env.update(
        LEDGER_DATABASE_URL=fresh_postgres_url,
        LEDGER_PORT=str(port),
        LEDGER_SUPPORT_HOURS="24/7",
        PYTHONUNBUFFERED="1",
    )
    tokens = dict(
        entry.split(":")[0::2] for entry in settings["LEDGER_API_KEYS"].split(",")
    )  # role -> token (role:name:token)
    url = f"http://127.0.0.1:{port}"
    logs = [tmp_path / "api.log", tmp_path / "project.log"]
    with ExitStack() as stack:
        stack.enter_context(started(command_of("ledger-project.service"), env, tmp_path, logs[1]))
        stack.enter_context(started(command_of("ledger-api.service"), env, tmp_path, logs[0]))
        _wait_healthy(url, logs)
        desk = {"Authorization": f"Bearer {tokens['helpdesk']}"}
        fin = {"Authorization": f"Bearer {tokens['finance']}"}
        opened = httpx.post(
            f"{url}/v1/accounts", headers=desk, json={"customer_id": "D-1", "name": "Deploy"}
        )
        assert opened.status_code == 201, opened.text
        invoice = httpx.post(f"{url}/v1/accounts/D-1/invoices", headers=fin, json={"package": 80})
        assert invoice.status_code == 201, invoice.text
        paid = httpx.post(
            f"{url}/v1/invoices/{invoice.json()['invoice_id']}/payment",
            headers=fin,
            json={"payment_ref": "deploy-1"},
        )
        assert paid.status_code == 200, paid.text
        # The API runs no projections: only the worker can bring the balance to 80.
        read = httpx.get(
            f"{url}/v1/accounts/D-1",
            headers=desk,
            params={"after": paid.json()["position"]},
            timeout=15,
        )
        assert read.status_code == 200, "\n".join(p.read_text() for p in logs)
        assert read.json()["balance"] == 80
