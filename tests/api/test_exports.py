"""Finance exports: 2,000 movements as CSV (streamed, header + one line each)
and as JSON pages chained by ``next_after``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from uuid import uuid4

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from ledger.values import Actor, Role
from tests.api.conftest import Api

MOVEMENTS = 2000
CHUNK = 100


def _many_movements(api: Api) -> tuple[str, int]:
    customer_id = f"C-bulk-{uuid4().hex[:10]}"
    api.ok(api.post("finance", "/v1/accounts", {"customer_id": customer_id, "name": "Bulk"}), 201)
    # Setup, not the contract: many events in few appends, straight to the store.
    ledger: Ledger = api.client.app.state.ledger  # type: ignore[attr-defined]
    actor = Actor(Role.FINANCE, "bulk")
    # Appends of CHUNK events: one append of thousands stalled psycopg's pipeline.
    position = 0
    for start in range(0, MOVEMENTS, CHUNK):
        account: CustomerAccount = ledger.repository.get(account_id_for(customer_id))
        for i in range(start, start + CHUNK):
            account.adjust(1, f"bulk {i}", actor=actor, at=datetime.now(UTC))
        position = ledger.save(account)[-1].notification.id
    return customer_id, position


def test_csv_export_of_many_movements_streams_every_line(api: Api) -> None:
    customer_id, position = _many_movements(api)
    with api.client.stream(
        "GET",
        "/v1/audit/movements",
        params={"customer_id": customer_id, "format": "csv", "after": position},
        headers={"Authorization": "Bearer finance-token-0001"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = "".join(response.iter_text())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "position",
        "at",
        "customer_id",
        "kind",
        "amount",
        "balance_after",
        "request_id",
        "invoice_id",
        "actor",
        "reason",
        "price_list_version",
        "held",
    ]
    body = rows[1:]
    assert len(body) == MOVEMENTS
    assert [int(r[5]) for r in body] == list(range(1, MOVEMENTS + 1))
    assert body[-1][8] == "finance:bulk" and body[-1][9] == f"bulk {MOVEMENTS - 1}"
    positions = [int(r[0]) for r in body]
    assert positions == sorted(positions)

    # The same account's own export, and JSON pages chained by next_after.
    own = api.get("helpdesk", f"/v1/accounts/{customer_id}/movements", params={"format": "csv"})
    assert own.text.count("\r\n") == MOVEMENTS + 1
    seen, cursor, pages = 0, 0, 0
    while cursor is not None and pages < 10:
        page = api.ok(
            api.get(
                "finance",
                "/v1/audit/movements",
                params={"customer_id": customer_id, "limit": 1000, "page_after": cursor},
            )
        )
        seen += len(page["items"])
        cursor = page["next_after"]
        pages += 1
    assert seen == MOVEMENTS and pages == 3
