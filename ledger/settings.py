"""One typed settings object, read from the environment and validated at
start-up. An invalid value stops start-up with one line naming the variable.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import psycopg
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.policy import SupportCalendar

DEFAULT_DATABASE_URL = "sqlite:///./var/ledger.db"
DEFAULT_SUPPORT_HOURS = "Mon-Fri 09:00-18:00 Europe/Samara"


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    api_keys: str | None = None
    support_hours: str = DEFAULT_SUPPORT_HOURS
    holidays: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    snapshot_interval: int = 50

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        database_env(value)
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

    @cached_property
    def calendar(self) -> SupportCalendar:
        return SupportCalendar.parse(self.support_hours, self.holidays)

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"


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
        Path(path).parent.mkdir(parents=True, exist_ok=True)
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
