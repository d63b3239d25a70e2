"""One typed settings object, read from the environment and validated at
start-up. An invalid value stops start-up with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import psycopg
from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.policy import SupportCalendar
from ledger.values import Role

DEFAULT_DATABASE_URL = "sqlite:///./var/ledger.db"
DEFAULT_SUPPORT_HOURS = "Mon-Fri 09:00-18:00 Europe/Samara"
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: ``role:token`` entries; a ``SecretStr``, so that no repr or log shows them.
    api_keys: SecretStr | None = None
    #: A bearer token (Prometheus' ``bearer_token``) for ``/metrics`` besides the admin role.
    metrics_token: SecretStr | None = None
    support_hours: str = DEFAULT_SUPPORT_HOURS
    holidays: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    snapshot_interval: int = 50
    #: Run the read models' projection runner inside the API process.
    in_process_projections: bool = True
    #: How long a read served by a read model waits for ``?after=``, in seconds.
    read_timeout_s: float = 5.0
    #: The largest request body the API accepts, in bytes (larger: 413).
    max_body_bytes: int = 64 * 1024
    #: The deadline for reading a whole request (headers and body), in seconds.
    request_read_timeout_s: float = 10.0
    #: How long an idle keep-alive connection is kept open, in seconds.
    keep_alive_timeout_s: float = 5.0
    #: Connections and requests in flight per process beyond which uvicorn answers 503.
    limit_concurrency: int = 512
    #: Requests in flight per API key beyond which the API answers 429.
    max_concurrent_per_key: int = 16
    #: Events a read model may lag by before ``/readyz`` counts it late.
    ready_max_lag: int = 1000
    #: How long a read model may stay late (or no worker hold the read
    #: models' locks) before ``/readyz`` answers 503, in seconds.
    ready_lag_grace_s: float = 30.0
    #: Wrong bearer tokens from one client address in a minute beyond which the API answers 429.
    auth_failures_per_minute: int = 20
    #: ``BalanceLow`` is raised when a movement takes a balance below this.
    low_balance: int = 20
    #: Webhook delivery: the answer timeout, the first retry delay and its cap,
    #: when to give up on one event, and how often an idle webhook looks for
    #: new events (all in seconds).
    webhook_timeout_s: float = 10.0
    webhook_retry_first_s: float = 1.0
    webhook_retry_max_s: float = 3600.0
    webhook_give_up_s: float = 3 * 24 * 3600.0
    webhook_poll_s: float = 0.5
    #: Signs the console's session cookies, the customer statement links and
    #: the lists' cursors (at least 32 characters; the lists alone fall back
    #: to a secret kept in the read-model store).
    secret_key: SecretStr | None = None
    #: How many open hours of the support calendar a hold lives.
    hold_working_hours: int = 16
    #: The largest adjustment (in absolute credits) applied without a second
    #: finance key's approval.
    adjustment_limit: int = 100
    #: Group commit: concurrent commands of one process share one load and
    #: one append (``ledger.commands.batch``); off, each command is its own.
    batch_commands: bool = True

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_api_keys(value.get_secret_value())
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("the token is 8 to 256 of A-Z a-z 0-9 . _ ~ + / = -")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        database_env(value)
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret key is at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("support_hours")
    @classmethod
    def _check_support_hours(cls, value: str) -> str:
        SupportCalendar.parse(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _check_holidays(cls, value: str) -> str:
        SupportCalendar.parse("24/7", value)
        return value

    @field_validator("hold_working_hours")
    @classmethod
    def _check_hold_working_hours(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("a hold lives 1 to 10000 open hours")
        return value

    @field_validator("adjustment_limit")
    @classmethod
    def _check_adjustment_limit(cls, value: int) -> int:
        if not 0 <= value <= 1_000_000_000:
            raise ValueError("the adjustment limit is 0 to 1000000000 credits")
        return value

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("a TCP port is between 1 and 65535")
        return value

    @field_validator("snapshot_interval")
    @classmethod
    def _check_snapshot_interval(cls, value: int) -> int:
        if value < 1:
            raise ValueError("the snapshot interval is a positive number of events")
        return value

    @field_validator("read_timeout_s")
    @classmethod
    def _check_read_timeout(cls, value: float) -> float:
        if not 0 < value <= 60:
            raise ValueError("the read timeout is between 0 and 60 seconds")
        return value

    @field_validator("max_body_bytes")
    @classmethod
    def _check_max_body_bytes(cls, value: int) -> int:
        if not 1024 <= value <= 16 * 1024 * 1024:
            raise ValueError("the body limit is between 1024 bytes and 16 MiB")
        return value

    @field_validator("request_read_timeout_s", "keep_alive_timeout_s")
    @classmethod
    def _check_connection_timeout(cls, value: float) -> float:
        if not 0 < value <= 300:
            raise ValueError("the timeout is between 0 and 300 seconds")
        return value

    @field_validator("limit_concurrency")
    @classmethod
    def _check_limit_concurrency(cls, value: int) -> int:
        if not 1 <= value <= 100_000:
            raise ValueError("the concurrency limit is between 1 and 100000")
        return value

    @field_validator("max_concurrent_per_key")
    @classmethod
    def _check_max_concurrent_per_key(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("the per-key limit is between 1 and 10000")
        return value

    @field_validator("ready_max_lag")
    @classmethod
    def _check_ready_max_lag(cls, value: int) -> int:
        if value < 0:
            raise ValueError("the lag threshold is a number of events, 0 or more")
        return value

    @field_validator("ready_lag_grace_s")
    @classmethod
    def _check_ready_lag_grace(cls, value: float) -> float:
        if not 0 <= value <= 3600:
            raise ValueError("the grace period is between 0 and 3600 seconds")
        return value

    @field_validator("auth_failures_per_minute")
    @classmethod
    def _check_auth_failures_per_minute(cls, value: int) -> int:
        if not 1 <= value <= 1_000_000:
            raise ValueError("the failed-authentication limit is between 1 and 1000000")
        return value

    @field_validator("low_balance")
    @classmethod
    def _check_low_balance(cls, value: int) -> int:
        if not 0 <= value <= 1_000_000_000:
            raise ValueError("the low-balance threshold is a number of credits, 0 or more")
        return value

    @field_validator(
        "webhook_timeout_s",
        "webhook_retry_first_s",
        "webhook_retry_max_s",
        "webhook_give_up_s",
        "webhook_poll_s",
    )
    @classmethod
    def _check_webhook_seconds(cls, value: float) -> float:
        if not 0 < value <= 30 * 24 * 3600:
            raise ValueError("a webhook delay is a positive number of seconds, at most 30 days")
        return value

    @cached_property
    def calendar(self) -> SupportCalendar:
        return SupportCalendar.parse(self.support_hours, self.holidays)

    @property
    def api_key_entries(self) -> tuple[ApiKeyEntry, ...]:
        """The parsed ``LEDGER_API_KEYS`` (empty when unset)."""
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else ()

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"


# RFC 6750 b64token characters: no whitespace, no comma (the separator), no colon.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{8,256}")
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ApiKeyEntry:
    """One ``LEDGER_API_KEYS`` entry; ``name`` is the actor recorded, never the token."""

    role: Role
    name: str
    token: str = field(repr=False)


def parse_api_keys(text: str) -> tuple[ApiKeyEntry, ...]:
    """``role:token`` or ``role:name:token`` entries, comma-separated.

    A key without a name is called after its role and its index among that
    role's keys (``finance-1``). Raises ``ValueError`` with a message that
    names the entry by its index, never its token.
    """
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise ValueError("no keys; expected role:token or role:name:token, comma-separated")
    counts: Counter[Role] = Counter()
    keys: list[ApiKeyEntry] = []
    for index, entry in enumerate(entries, start=1):
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError(f"entry {index} is not role:token or role:name:token")
        try:
            role = Role(parts[0].lower())
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ValueError(f"entry {index} has an unknown role; one of {roles}") from None
        counts[role] += 1
        name = parts[1] if len(parts) == 3 else f"{role.value}-{counts[role]}"
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(f"entry {index} has an invalid key name (letters, digits, . _ -)")
        if not _TOKEN.fullmatch(parts[-1]):
            raise ValueError(
                f"entry {index} has an invalid token (8 to 256 of A-Z a-z 0-9 . _ ~ + / = -)"
            )
        keys.append(ApiKeyEntry(role, name, parts[-1]))
    if len({k.token for k in keys}) != len(keys):
        raise ValueError("the same token appears in two entries")
    names = Counter(k.name for k in keys)
    repeated = sorted(n for n, c in names.items() if c > 1)
    if repeated:
        raise ValueError(f"key name {repeated[0]!r} appears in two entries")
    return tuple(keys)


def load_settings() -> LedgerSettings:
    """Read the settings; raise ``SettingsError`` naming the first bad variable."""
    try:
        return LedgerSettings()
    except ValidationError as e:
        first = e.errors()[0]
        variable = "LEDGER_" + str(first["loc"][0]).upper() if first["loc"] else "LEDGER_*"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{variable}: {message}") from None


def database_env(database_url: str) -> dict[str, str]:
    """The eventsourcing environment for a ``LEDGER_DATABASE_URL``.

    ``sqlite:///path`` (relative to the working directory) or
    ``postgresql://user:password@host:port/dbname[?schema=name]``.
    """
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if not path:
            raise ValueError("sqlite:///path needs a file path")
        _private_file(Path(path))
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    if database_url.startswith(("postgresql://", "postgres://")):
        schema = ""
        url = database_url
        if "?schema=" in url:
            url, schema = url.split("?schema=", 1)
        try:
            parts = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as e:
            raise ValueError(f"not a PostgreSQL URL: {e}") from None
        missing = [k for k in ("host", "user", "dbname") if not parts.get(k)]
        if missing:
            raise ValueError(f"the PostgreSQL URL lacks {', '.join(missing)}")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": str(parts["host"]),
            "POSTGRES_PORT": str(parts.get("port") or 5432),
            "POSTGRES_USER": str(parts["user"]),
            "POSTGRES_PASSWORD": str(parts.get("password") or ""),
            "POSTGRES_DBNAME": str(parts["dbname"]),
            "POSTGRES_SCHEMA": schema,
        }
    raise ValueError("expected sqlite:///path or postgresql://user:password@host:port/dbname")


def _private_file(path: Path) -> None:
    """Create the SQLite file's missing directories 0700 and the file 0600.

    Only what this creates is given these modes (an existing directory, such
    as the working directory, is left as it is). SQLite gives its ``-wal``
    and ``-shm`` files the mode of the database file.
    """
    text = str(path)
    if ":memory:" in text or "mode=memory" in text or text.startswith("file:") or path.exists():
        return
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is narrowed by the umask, never widened
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return  # another process created it meanwhile
    os.close(descriptor)  # an empty file is an empty SQLite database
