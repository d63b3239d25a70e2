"""Fixtures shared by the whole suite.

PostgreSQL is provisioned lazily: only when a test asks for `postgres_url` or
`fresh_postgres_url`, so unit tests run without it. When it cannot be
provisioned the requesting tests fail (never skip) and say why.
"""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.pg import PostgresUnavailableError, fresh_database, provision_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty database shared by the session; tests keep apart through random ids."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(provision_postgres())
        except PostgresUnavailableError as error:
            reason = str(error)
        else:
            yield url
            return
    # Failing outside the except clause keeps the report to the one reason.
    pytest.fail(f"PostgreSQL is required but unavailable: {reason}", pytrace=False)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A database of its own for one test, on the session's server, dropped afterwards."""
    with fresh_database(postgres_url) as url:
        yield url
