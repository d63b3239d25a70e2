"""The PostgreSQL fixtures give usable, isolated databases."""

from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from tests.pg import split_url

pytestmark = pytest.mark.postgres

USER_TABLES = """
    select count(*) from information_schema.tables
    where table_schema not in ('pg_catalog', 'information_schema')
"""


def test_session_database_answers_and_accepts_a_new_table(postgres_url: str) -> None:
    table = sql.Identifier(f"probe_{uuid4().hex}")
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        conn.execute(sql.SQL("create table {} (id int primary key)").format(table))
        conn.execute(sql.SQL("insert into {} (id) values (7)").format(table))
        assert conn.execute(sql.SQL("select id from {}").format(table)).fetchall() == [(7,)]


def test_fresh_database_is_empty_and_distinct_from_the_session_database(
    postgres_url: str, fresh_postgres_url: str
) -> None:
    parts = split_url(fresh_postgres_url)
    assert parts["dbname"] != split_url(postgres_url)["dbname"]
    # Connect from the split parts, as eventsourcing does with POSTGRES_HOST, ...
    with psycopg.connect(
        host=parts["host"],
        port=parts["port"],
        user=parts["user"],
        password=parts["password"],
        dbname=parts["dbname"],
        connect_timeout=10,
    ) as conn:
        assert conn.execute("select current_database()").fetchone() == (parts["dbname"],)
        assert conn.execute(USER_TABLES).fetchone() == (0,)
