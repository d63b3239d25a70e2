"""The read models behind the lists, on SQLite and PostgreSQL: the invoices
read model and the requests' opening positions follow the events, a changed
schema version rebuilds a read model from zero, every list query is an index
scan (EXPLAIN), and the cursor secret is shared by every process of a store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr
from typer.testing import CliRunner

from ledger.application import Ledger
from ledger.bootstrap import Services, open_services
from ledger.cli import app
from ledger.errors import StoreUnavailableError
from ledger.persistence.store import Cur, Store
from ledger.projections import Projections, balances, invoices, movements, requests
from ledger.projections.base import SCHEMA_TABLE
from ledger.projections.cursor import Cursors, InvalidCursorError
from ledger.settings import LedgerSettings
from tests.pg import make_url, split_url
from tests.projections.conftest import dump
from tests.projections.story import FINANCE, HELPDESK, tell


def test_the_invoices_read_model_equals_the_invoices_in_the_event_store(
    ledger: Ledger, services: Services
) -> None:
    tell(ledger)
    services.projections.catch_up()
    page = services.queries.list_invoices(limit=500)
    assert page.next_cursor is None and len(page.items) == 4
    for row in page.items:
        view = ledger.get_invoice(row.invoice_id)
        assert (row.customer_id, row.credits, row.amount_usd, row.status, row.payment_ref) == (
            view.customer_id,
            view.credits,
            view.amount_usd,
            view.status,
            view.payment_ref,
        )
        assert row.issued_at == view.issued_at
    positions = [row.issued_position for row in page.items]
    assert positions == sorted(positions, reverse=True)
    assert {row.status for row in page.items} == {"paid", "voided"}
    assert [r.status for r in services.queries.list_invoices(status="voided").items] == ["voided"]
    assert {r.customer_id for r in services.queries.list_invoices(customer_id="bolt").items} == {
        "bolt"
    }


def test_a_request_keeps_the_position_it_was_opened_at(ledger: Ledger, services: Services) -> None:
    story = tell(ledger)
    services.projections.catch_up()
    rows = services.queries.list_requests(limit=500).items
    assert len(rows) == len(story.requests)
    for row in rows:
        history = ledger.request_history(row.request_id)
        assert row.opened_position == history[0].position
        assert row.position == history[-1].position
    assert [r.opened_position for r in rows] == sorted(
        (r.opened_position for r in rows), reverse=True
    )


def test_account_search_folds_case_and_unicode(ledger: Ledger, services: Services) -> None:
    ledger.open_account("K-Straße-1", "Große Bäckerei ǅemal", actor=HELPDESK)
    ledger.open_account("k-other", "Other", actor=HELPDESK)
    services.projections.catch_up()

    def found(q: str) -> list[str]:
        return [r.customer_id for r in services.queries.list_accounts(q=q).items]

    assert found("k-strasse") == ["K-Straße-1"]  # a prefix of the customer id
    assert found("GROSSE BÄCKEREI") == ["K-Straße-1"]  # a part of the name
    assert found("džemal") == ["K-Straße-1"]  # a title-case digraph folds too
    assert found("k-") == ["K-Straße-1", "k-other"]
    assert found("bäckerei x") == []


def _raw(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.reading() as cur:
        return cur.run(sql).all()


def _write(store: Store, *statements: str) -> None:
    writer = store.writer()
    try:
        with writer.transaction() as cur:
            for statement in statements:
                cur.run(statement)
    finally:
        writer.close()


def test_a_changed_schema_version_rebuilds_that_read_model_from_zero(
    ledger: Ledger, services: Services, settings: LedgerSettings
) -> None:
    tell(ledger)
    services.projections.catch_up()
    before = dump(services.projections)
    positions = services.queries.positions()
    # As an older release left it: balances at version 1, without the search columns.
    _write(
        services.store,
        f"UPDATE {SCHEMA_TABLE} SET version = 1 WHERE read_model = 'balances'",
        f"DROP TABLE {balances.TABLE}",
        f"CREATE TABLE {balances.TABLE} (account_id TEXT PRIMARY KEY, customer_id TEXT)",
    )
    reopened = open_services(settings, ledger=ledger)
    try:
        assert reopened.queries.positions()["balances"] == 0
        assert {k: v for k, v in reopened.queries.positions().items() if k != "balances"} == {
            k: v for k, v in positions.items() if k != "balances"
        }
        assert _raw(reopened.store, f"SELECT count(*) FROM {balances.TABLE}") == [(0,)]
        reopened.projections.catch_up()
        assert dump(reopened.projections) == before
        assert _raw(
            reopened.store, f"SELECT version FROM {SCHEMA_TABLE} WHERE read_model = 'balances'"
        ) == [(balances.Balances.schema_version,)]
    finally:
        reopened.close()


def test_a_store_from_before_schema_versions_rebuilds_the_changed_read_models_only(
    ledger: Ledger, services: Services, settings: LedgerSettings
) -> None:
    tell(ledger)
    services.projections.catch_up()
    before = dump(services.projections)
    positions = services.queries.positions()
    _write(services.store, f"DELETE FROM {SCHEMA_TABLE}")
    reopened = open_services(settings, ledger=ledger)
    try:
        after = reopened.queries.positions()
        assert after["balances"] == after["requests"] == after["movements"] == 0
        assert after["summary"] == positions["summary"]
        reopened.projections.catch_up()
        assert dump(reopened.projections) == before
    finally:
        reopened.close()


def test_without_create_table_an_outdated_read_model_stops_start_up_naming_it(
    ledger: Ledger, services: Services
) -> None:
    """With ``CREATE_TABLE=false`` (the schema is ``ledger db setup``'s) nothing
    is dropped or created: a read model at another version asks for ``db setup``."""
    tell(ledger)
    services.projections.catch_up()
    _write(services.store, f"UPDATE {SCHEMA_TABLE} SET version = 1 WHERE read_model = 'balances'")
    services.store.create_tables = False
    with pytest.raises(StoreUnavailableError) as refused:
        Projections(ledger, services.store, services.audit)
    assert "balances (version 1)" in str(refused.value)
    assert "ledger db setup" in str(refused.value)
    assert services.queries.balance("acme") is not None  # nothing was dropped
    services.store.create_tables = True
    Projections(ledger, services.store, services.audit).close()  # rebuilds it
    assert services.queries.positions()["balances"] == 0


def test_every_process_of_a_store_accepts_the_others_cursors(
    ledger: Ledger, services: Services, settings: LedgerSettings
) -> None:
    for n in range(3):
        ledger.open_account(f"multi-{n}", "Shop", actor=HELPDESK)
    services.projections.catch_up()
    first = services.queries.list_accounts(q="multi-", limit=1)
    assert first.next_cursor is not None
    other = open_services(settings, ledger=ledger)
    try:
        second = other.queries.list_accounts(q="multi-", cursor=first.next_cursor, limit=1)
        assert [r.customer_id for r in second.items] == ["multi-1"]
    finally:
        other.close()
    configured = LedgerSettings(
        database_url=settings.database_url,
        support_hours="24/7",
        secret_key=SecretStr("configured-secret-of-32-characters"),
    )
    keyed = open_services(configured, ledger=ledger)
    try:
        with pytest.raises(InvalidCursorError) as refused:
            keyed.queries.list_accounts(q="multi-", cursor=first.next_cursor, limit=1)
        assert refused.value.field == "cursor"  # type: ignore[attr-defined]
        own = keyed.queries.list_accounts(q="multi-", limit=1)
        assert own.next_cursor is not None
        again = keyed.queries.list_accounts(q="multi-", cursor=own.next_cursor, limit=1)
        assert [r.customer_id for r in again.items] == ["multi-1"]
    finally:
        keyed.close()


def test_a_cursor_names_its_list_and_filters() -> None:
    cursors = Cursors(b"secret")
    token = cursors.issue("accounts", {"q": "a"}, "C-1")
    assert cursors.open(token, "accounts", {"q": "a"}, str) == "C-1"
    for name, filters, kind in (
        ("requests", {"q": "a"}, str),
        ("accounts", {"q": "b"}, str),
        ("accounts", {"q": "a"}, int),
    ):
        with pytest.raises(InvalidCursorError):
            cursors.open(token, name, filters, kind)  # type: ignore[type-var]
    with pytest.raises(InvalidCursorError):
        Cursors(b"other").open(token, "accounts", {"q": "a"}, str)


# --- EXPLAIN: every list is an index scan ------------------------------------------

SEED_ROWS = 20_000


class Explain(Cur):
    """Runs ``EXPLAIN`` of each statement instead, and keeps the plans."""

    def __init__(self, raw: Any, sqlite: bool) -> None:
        super().__init__(raw, sqlite)
        self.plans: list[str] = []

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cur:
        prefix = "EXPLAIN QUERY PLAN " if self._sqlite else "EXPLAIN "
        super().run(prefix + sql, params)
        self.plans.append("\n".join(str(row[-1]) for row in self._raw.fetchall()))
        return self

    def all(self) -> list[tuple[Any, ...]]:
        return []


def _seed(store: Store) -> None:
    """Many rows straight into the read-model tables (never the event store),
    so the planner's choice is the one it makes at scale."""
    n = SEED_ROWS
    if store.backend == "postgres":
        series = f"FROM generate_series(1, {n}) AS i"
        uid = "md5(i::text || '{0}')::uuid"
        statements = [
            f"INSERT INTO {balances.TABLE} SELECT {uid.format('a')}, 'C' || lpad(i::text, 6, '0'), "
            "'Shop ' || i, i %% 100, 0, 0, 0, 0, '[]', i, 'c' || lpad(i::text, 6, '0'), "
            f"'shop ' || i {series}",
            f"INSERT INTO {requests.TABLE} SELECT {uid.format('r')}, 'C' || (i %% 1000), "
            "(ARRAY['configuration','installation','investigation'])[i %% 3 + 1], 's', "
            "(ARRAY['open','awaiting_quote','quoted','charged','cancelled','referred',"
            "'declined','refunded','disputed','awaiting_acceptance','dispute_rejected'])"
            "[i %% 11 + 1], 10, NULL, NULL, 0, 0, NULL, NULL, false, now(), NULL, i, i, 1 "
            f"{series}",
            f"INSERT INTO {invoices.TABLE} SELECT {uid.format('i')}, 'C' || (i %% 1000), 80, 90, "
            f"(ARRAY['issued','paid','voided'])[i %% 3 + 1], NULL, now(), i, i, 1 {series}",
            f"INSERT INTO {movements.TABLE} SELECT i, {uid.format('a')}, 'C' || (i %% 1000), "
            f"'charge', -1, 0, NULL, NULL, 'x', NULL, now(), 1, NULL {series}",
        ]
        analyze = [
            f"ANALYZE {t}"
            for t in (balances.TABLE, requests.TABLE, invoices.TABLE, movements.TABLE)
        ]
    else:
        series = f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
        statements = [
            f"{series}INSERT INTO {balances.TABLE} SELECT 'a' || i, 'C' || printf('%06d', i), "
            "'Shop ' || i, i % 100, 0, 0, 0, 0, '[]', i, 'c' || printf('%06d', i), "
            "'shop ' || i FROM s",
            f"{series}INSERT INTO {requests.TABLE} SELECT 'r' || i, 'C' || (i % 1000), "
            "'configuration', 's', CASE i % 11 WHEN 0 THEN 'awaiting_quote' ELSE 'open' END, "
            "10, NULL, NULL, 0, 0, NULL, NULL, 0, '2026', NULL, i, i, 1 FROM s",
            f"{series}INSERT INTO {invoices.TABLE} SELECT 'i' || i, 'C' || (i % 1000), 80, '90', "
            "CASE i % 3 WHEN 0 THEN 'paid' ELSE 'issued' END, NULL, '2026', i, i, 1 FROM s",
            f"{series}INSERT INTO {movements.TABLE} SELECT i, 'a' || i, 'C' || (i % 1000), "
            "'charge', -1, 0, NULL, NULL, 'x', NULL, '2026', 1, NULL FROM s",
        ]
        analyze = ["ANALYZE"]
    _write(store, *statements, *analyze)


def _plans(store: Store) -> dict[str, str]:
    sqlite = store.backend == "sqlite"
    plans: dict[str, str] = {}
    queries = {
        "accounts": lambda c: balances.list_accounts(
            c, q=None, balance_below=None, after=None, limit=51
        ),
        "accounts after a cursor": lambda c: balances.list_accounts(
            c, q=None, balance_below=None, after="C010000", limit=51
        ),
        "accounts by name part": lambda c: balances.list_accounts(
            c, q="shop 1234", balance_below=None, after=None, limit=51
        ),
        "accounts by customer prefix": lambda c: balances.list_accounts(
            c, q="C01234", balance_below=None, after=None, limit=51
        ),
        "accounts below a balance": lambda c: balances.list_accounts(
            c, q=None, balance_below=1, after=None, limit=51
        ),
        "requests": lambda c: requests.list_requests(
            c, store, statuses=(), customer_id=None, category=None, before=None, limit=51
        ),
        "requests by status": lambda c: requests.list_requests(
            c,
            store,
            statuses=["awaiting_quote"],
            customer_id=None,
            category=None,
            before=15_000,
            limit=51,
        ),
        "requests by two statuses": lambda c: requests.list_requests(
            c,
            store,
            statuses=["awaiting_quote", "quoted"],
            customer_id=None,
            category=None,
            before=None,
            limit=51,
        ),
        "requests by customer": lambda c: requests.list_requests(
            c, store, statuses=(), customer_id="C7", category=None, before=None, limit=51
        ),
        "invoices by status": lambda c: invoices.list_invoices(
            c, status="issued", customer_id=None, before=None, limit=51
        ),
        "invoices by customer": lambda c: invoices.list_invoices(
            c, status=None, customer_id="C7", before=9000, limit=51
        ),
        "movements page": lambda c: movements.list_movements(
            c, customer_id="C7", after=5007, limit=51
        ),
    }
    with store.reading() as cur:
        for name, query in queries.items():
            explain = Explain(cur._raw, sqlite)
            query(explain)
            plans[name] = explain.plans[0]
    return plans


def test_every_list_query_is_an_index_scan(services: Services) -> None:
    _seed(services.store)
    plans = _plans(services.store)
    trigrams = True
    if services.store.backend == "postgres":
        with services.store.reading() as cur:
            trigrams = bool(
                cur.run("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").all()
            )
    for name, plan in plans.items():
        print(f"--- {name}\n{plan}")  # the plans, for the note (pytest -s)
        if name.startswith("accounts by") and not trigrams:
            # A server without pg_trgm (pgserver's build): the documented
            # fallback. ``q`` matches a customer prefix OR a name part, and a
            # name part cannot use a b-tree, so the search reads the table.
            assert "Seq Scan on rm_balances" in plan, (name, plan)
            continue
        if services.store.backend == "postgres":
            assert "Seq Scan" not in plan and "Index" in plan, (name, plan)
        else:
            assert "USING" in plan and "INDEX" in plan.upper(), (name, plan)
    if services.store.backend == "postgres" and trigrams:
        assert "rm_balances_name_trgm" in plans["accounts by name part"]
        assert "rm_balances_customer_search" in plans["accounts by customer prefix"]


def test_invoice_events_are_read(ledger: Ledger, services: Services) -> None:
    ledger.open_account("inv", "Inv", actor=HELPDESK)
    invoice = ledger.issue_invoice("inv", package=80, actor=FINANCE)
    services.projections.catch_up()
    assert [r.status for r in services.queries.list_invoices(customer_id="inv").items] == ["issued"]
    ledger.pay_invoice(invoice.invoice_id, "ref-1", actor=FINANCE)
    services.projections.catch_up()
    (row,) = services.queries.list_invoices(customer_id="inv").items
    assert (row.status, row.payment_ref) == ("paid", "ref-1")


# --- the CLI ---------------------------------------------------------------------


def test_the_cli_prints_the_accounts_and_requests_lists(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")
    monkeypatch.setenv("COLUMNS", "200")
    tell(ledger)
    runner = CliRunner()
    accounts = runner.invoke(app, ["accounts", "--q", "ACME"])
    assert accounts.exit_code == 0, accounts.output
    assert "acme" in accounts.output and "Acme Ltd" in accounts.output
    assert "bolt" not in accounts.output
    low = runner.invoke(app, ["accounts", "--balance-below", "120"])
    assert low.exit_code == 0 and "bolt" in low.output and "acme" not in low.output
    paged = runner.invoke(app, ["accounts", "--limit", "1"])
    assert "more: --cursor " in paged.output and "bolt" not in paged.output
    cursor = paged.output.split("more: --cursor ")[1].split()[0]
    second = runner.invoke(app, ["accounts", "--limit", "1", "--cursor", cursor])
    assert second.exit_code == 0 and "bolt" in second.output, second.output
    charged = runner.invoke(app, ["requests", "--status", "charged", "--status", "refunded"])
    assert charged.exit_code == 0, charged.output
    assert "charged" in charged.output and "cancelled" not in charged.output
    bad = runner.invoke(app, ["requests", "--status", "bogus"])
    assert bad.exit_code != 0 and "bogus" in bad.output
    forged = runner.invoke(app, ["accounts", "--cursor", "forged.cursor"])
    assert forged.exit_code == 2 and "--cursor" in forged.output


@pytest.mark.postgres
def test_a_role_that_may_not_create_extensions_still_gets_a_working_search(
    fresh_postgres_url: str,
) -> None:
    role = f"lists_noext_{uuid4().hex[:8]}"
    with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(role))
        )
    try:
        url = make_url(**{**split_url(fresh_postgres_url), "user": role})
        # No CREATE on the database: no pg_trgm.
        services = open_services(LedgerSettings(database_url=url, support_hours="24/7"))
        try:
            services.ledger.open_account("noext-1", "Trigramless Trading", actor=HELPDESK)
            services.projections.catch_up()
            found = services.queries.list_accounts(q="GRAMLESS").items
            assert [r.customer_id for r in found] == ["noext-1"]
            indexes = _raw(
                services.store, "SELECT indexname FROM pg_indexes WHERE tablename = 'rm_balances'"
            )
            assert ("rm_balances_name_trgm",) not in indexes
        finally:
            services.close()
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
