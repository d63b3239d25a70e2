"""``ledger serve`` as a real process: the README's curl story against it,
the embedded mode's generated tokens, and start-up refusals."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STORY_KEYS = (
    "helpdesk:ana:hd-secret-1,specialist:bo:sp-secret-1,finance:cy:fi-secret-1,"
    "finance:dee:fi-secret-2,admin:di:ad-secret-1"
)
STORY_SECRET = "story-only-secret-change-me-0123456789"
START_TIMEOUT_S = 30
STORY_TIMEOUT_S = 60


def _ledger_command() -> list[str]:
    script = Path(sys.executable).parent / "ledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ledger.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        LEDGER_SUPPORT_HOURS="24/7",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def _server(tmp_path: Path, port: int, *args: str, **env: str) -> Iterator[Path]:
    """A running ``ledger serve``; yields the file its output goes to. Outside
    the embedded mode (which makes its own), it is given a secret key."""
    if "--embedded" not in args:
        env.setdefault("LEDGER_SECRET_KEY", STORY_SECRET)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_ledger_command(), "serve", "--port", str(port), *args],
            env=_env(tmp_path, **env),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield log
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _story() -> str:
    """The README's story script: the sh block that sets ``API=``."""
    text = README.read_text()
    section = text.split("## A first story with curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert f"export LEDGER_API_KEYS='{STORY_KEYS}'" in section
    assert "export LEDGER_SUPPORT_HOURS=24/7" in section
    assert f"export LEDGER_SECRET_KEY={STORY_SECRET}" in section
    return next(b for b in blocks if b.startswith("API=http://127.0.0.1:8000"))


def test_the_readme_story_runs_against_a_started_server(tmp_path: Path) -> None:
    port = _free_port()
    script = _story().replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}", 1)
    with _server(tmp_path, port, LEDGER_API_KEYS=STORY_KEYS, LEDGER_SECRET_KEY=STORY_SECRET) as log:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=STORY_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        out = result.stdout
        assert "price: 25" in out
        assert '"held":25,' in out and '"balance":80,"available":55' in out
        assert '"charged":25,"balance":55' in out
        assert '"status":"approved","balance":230' in out
        assert "balance: 55" in out
        assert "refunded: 25, balance: 80" in out
        assert "RequestOpened" in out and "ChargeRefunded" in out and "-> refunded" in out
        csv_lines = [line for line in out.splitlines() if ",C-1001," in line]
        kinds_amounts_held = [
            (cells[3], cells[4], cells[11]) for cells in (line.split(",") for line in csv_lines)
        ]
        assert kinds_amounts_held == [
            ("purchase", "80", ""),
            ("reservation", "0", "25"),
            ("release", "0", "25"),
            ("charge", "-25", ""),
            ("refund", "25", ""),
        ]
        served = log.read_text()
    # One JSON line per request, never a token.
    assert '"route": "/v1/requests/{request_id}/charge"' in served
    for token in ("hd-secret-1", "sp-secret-1", "fi-secret-1", "fi-secret-2", "ad-secret-1"):
        assert token not in served


def test_embedded_mode_generates_and_prints_a_token_per_role(tmp_path: Path) -> None:
    port = _free_port()
    with _server(tmp_path, port, "--embedded") as log:
        printed = log.read_text()
        line = next(x for x in printed.splitlines() if x.startswith("Try: curl"))
        token = re.search(r"Bearer ([A-Za-z0-9_-]+)'", line)
        assert token is not None and len(token.group(1)) >= 20
        url = f"http://127.0.0.1:{port}/v1/support-hours"
        assert url in line
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token.group(1)}"})
        assert answer.status_code == 200 and answer.json()["open"] is True
        for role in ("helpdesk", "specialist", "finance", "admin"):
            assert re.search(rf"^\s+{role}\s+\S{{20,}}$", printed, flags=re.M), printed
    other_port = _free_port()
    with _server(tmp_path, other_port, "--embedded") as second:
        assert token.group(1) not in second.read_text()  # never a fixed token


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "LEDGER_API_KEYS"),
        ({"LEDGER_API_KEYS": "root:abcdefgh12"}, "LEDGER_API_KEYS"),
        (
            {"LEDGER_API_KEYS": "finance:abcdefgh12", "LEDGER_SUPPORT_HOURS": "sometimes"},
            "LEDGER_SUPPORT_HOURS",
        ),
        ({"LEDGER_API_KEYS": "finance:abcdefgh12"}, "LEDGER_SECRET_KEY"),
        (
            {"LEDGER_API_KEYS": "finance:abcdefgh12", "LEDGER_SECRET_KEY": "too-short"},
            "LEDGER_SECRET_KEY",
        ),
    ],
)
def test_serve_refuses_to_start_with_one_line_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = subprocess.run(
        [*_ledger_command(), "serve", "--port", str(_free_port())],
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert "abcdefgh12" not in result.stderr


def test_the_served_api_cuts_a_client_that_trickles_its_headers(tmp_path: Path) -> None:
    """``ledger serve`` runs uvicorn with the API's protocol and its read
    deadline from ``LEDGER_REQUEST_READ_TIMEOUT_S``."""
    port = _free_port()
    with (
        _server(tmp_path, port, LEDGER_API_KEYS=STORY_KEYS, LEDGER_REQUEST_READ_TIMEOUT_S="1"),
        socket.create_connection(("127.0.0.1", port), timeout=10) as slow,
    ):
        began = time.monotonic()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        answer = slow.recv(65536)
        # Before: no answer; the connection stayed open as long as the client liked.
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert 0.9 <= time.monotonic() - began < 5
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_embedded_mode_writes_the_keys_to_a_private_file(tmp_path: Path) -> None:
    port = _free_port()
    keys = tmp_path / "var" / "keys"
    with _server(tmp_path, port, "--embedded", "--keys-file", str(keys)) as log:
        printed = log.read_text()
    assert f"The keys are also in {keys}" in printed
    assert keys.stat().st_mode & 0o777 == 0o600
    written = keys.read_text()
    assert written.startswith("LEDGER_API_KEYS=")
    for role in ("helpdesk", "specialist", "finance", "admin"):
        token = re.search(rf"^\s+{role}\s+(\S{{20,}})$", printed, flags=re.M)
        assert token is not None and f"{role}:{token.group(1)}" in written


def test_embedded_mode_generates_a_secret_key_once_into_var(tmp_path: Path) -> None:
    port = _free_port()
    with _server(tmp_path, port, "--embedded") as log:
        assert "LEDGER_SECRET_KEY was unset: generated one into var/secret_key" in log.read_text()
    secret = tmp_path / "var" / "secret_key"
    assert len(secret.read_text().strip()) >= 32
    assert secret.stat().st_mode & 0o777 == 0o600
    first = secret.read_text()
    with _server(tmp_path, _free_port(), "--embedded") as log:
        assert "generated one" not in log.read_text()  # kept: sessions survive a restart
    assert secret.read_text() == first
