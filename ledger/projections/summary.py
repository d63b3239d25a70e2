"""The ``summary`` read model: finance's totals and the FIFO liability.

Invariants owned here:
- ``credits_sold`` and ``usd_received`` count paid invoices only (they come
  from ``CreditsPurchased``, which exists only for a payment);
- charged, refunded and adjusted (signed) are copied from the events'
  amounts; outstanding = sold - charged + refunded + adjusted;
- the lots (``rm_summary_lots``) hold, per account, the credits still
  outstanding, so their remaining credits sum to ``credits_outstanding``;
  the liability in USD values them first-in first-out by the rule written in
  ``ledger.projections.fifo``; a charge, a negative adjustment or a refund
  the lots cannot cover raises ``LotsExhaustedError`` naming the account and
  the event's position (the events and the lots disagree).

Its queries (``get``, ``read_lots``, ``remaining``) take an open read cursor:
the facade ``ledger.projections.queries.ReadQueries`` opens it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledger.aggregates import CustomerAccount
from ledger.persistence.store import MAX_IN_LIST, ColumnTypes, Cur, Store, as_decimal, as_uuid
from ledger.projections import fifo
from ledger.projections.base import TRACKING_TABLE, Positioned, ReadModel, write_rows
from ledger.projections.fifo import Lot, LotsExhaustedError
from ledger.projections.rows import SummaryRow

TABLE = "rm_summary"
LOTS = "rm_summary_lots"
TAKEN = "rm_summary_taken"
LOT_COLUMNS = "lot, account_id, credits, amount_usd, remaining"

A = CustomerAccount


class Summary(ReadModel):
    name = "summary"
    event_types = (A.CreditsPurchased, A.BalanceAdjusted, A.CreditsCharged, A.CreditsRefunded)
    tables = (TABLE, LOTS, TAKEN)

    def create_statements(self, t: ColumnTypes) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"id {t.bigint} PRIMARY KEY, credits_sold {t.bigint} NOT NULL, "
            f"usd_received {t.money} NOT NULL, credits_charged {t.bigint} NOT NULL, "
            f"credits_refunded {t.bigint} NOT NULL, credits_adjusted {t.bigint} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {LOTS} ("
            f"lot {t.bigint} PRIMARY KEY, account_id {t.uuid} NOT NULL, "
            f"credits {t.bigint} NOT NULL, amount_usd {t.money} NOT NULL, "
            f"remaining {t.bigint} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {LOTS}_open ON {LOTS} (account_id, lot) "
            "WHERE remaining > 0",
            f"CREATE TABLE IF NOT EXISTS {TAKEN} ("
            f"request_id {t.uuid} NOT NULL, lot {t.bigint} NOT NULL, "
            f"credits {t.bigint} NOT NULL, PRIMARY KEY (request_id, lot))",
        ]

    def apply(self, cur: Cur, events: Sequence[Positioned]) -> None:
        totals = self._load_totals(cur)
        refunded = {e.request_id for _, e in events if isinstance(e, A.CreditsRefunded)}
        taken = self._load_taken(cur, refunded)
        lots = self._load_lots(
            cur,
            {e.originator_id for _, e in events},
            {lot for per_request in taken.values() for lot in per_request},
        )
        # What the tables cannot hold yet (for ``write_rows``): the lots opened
        # by this batch's events, and what the requests not loaded took (a
        # request is charged once: its first charge is in this batch; were
        # one ever charged twice, the copy would fail on the key, loudly,
        # where an upsert would replace what the first charge took).
        loaded_lots, loaded_taken = set(lots), set(taken)
        by_account: dict[UUID, list[Lot]] = defaultdict(list)
        for lot in sorted(lots.values(), key=lambda lot: lot.lot):
            by_account[lot.account_id].append(lot)
        changed_lots: set[int] = set()
        changed_taken: set[UUID] = set()

        def open_lot(position: int, account_id: UUID, credits: int, usd: Decimal) -> None:
            lot = lots[position] = Lot(position, account_id, credits, usd, credits)
            by_account[account_id].append(lot)
            changed_lots.add(position)

        for position, e in events:
            try:
                if isinstance(e, A.CreditsPurchased):
                    totals[0] += e.amount
                    totals[1] += e.amount_usd
                    open_lot(position, e.originator_id, e.amount, e.amount_usd)
                elif isinstance(e, A.BalanceAdjusted):
                    totals[4] += e.amount
                    if e.amount > 0:
                        open_lot(position, e.originator_id, e.amount, Decimal(0))
                    else:
                        used = fifo.consume(by_account[e.originator_id], -e.amount)
                        changed_lots.update(lot for lot, _ in used)
                elif isinstance(e, A.CreditsCharged):
                    totals[2] -= e.amount
                    used = fifo.consume(by_account[e.originator_id], -e.amount)
                    changed_lots.update(lot for lot, _ in used)
                    per_request = taken.setdefault(e.request_id, {})
                    for lot_id, credits in used:
                        per_request[lot_id] = per_request.get(lot_id, 0) + credits
                    changed_taken.add(e.request_id)
                elif isinstance(e, A.CreditsRefunded):
                    totals[3] += e.amount
                    before = taken.get(e.request_id, {})
                    taken[e.request_id] = fifo.restore(lots, before, e.amount)
                    changed_lots.update(before)
                    changed_taken.add(e.request_id)
            except LotsExhaustedError as error:
                raise LotsExhaustedError(
                    str(error), account_id=e.originator_id, position=position
                ) from error
        s = self.store
        self._write(
            cur,
            totals,
            [lots[i] for i in sorted(changed_lots)],
            taken,
            changed_taken,
            fresh_lots=changed_lots - loaded_lots,
            fresh_taken={s.uuid(r) for r in changed_taken - loaded_taken},
        )

    def _load_totals(self, cur: Cur) -> list[Any]:
        row = cur.run(
            f"SELECT credits_sold, usd_received, credits_charged, credits_refunded, "
            f"credits_adjusted FROM {TABLE} WHERE id = 1"
        ).one()
        if row is None:
            return [0, Decimal(0), 0, 0, 0]
        return [int(row[0]), as_decimal(row[1]), int(row[2]), int(row[3]), int(row[4])]

    def _load_taken(self, cur: Cur, request_ids: set[UUID]) -> dict[UUID, dict[int, int]]:
        taken: dict[UUID, dict[int, int]] = {}
        ids = sorted(request_ids)
        for i in range(0, len(ids), MAX_IN_LIST):
            condition, params = self.store.in_list(
                "request_id", [self.store.uuid(r) for r in ids[i : i + MAX_IN_LIST]]
            )
            sql = f"SELECT request_id, lot, credits FROM {TAKEN} WHERE {condition}"
            for request_id, lot, credits in cur.run(sql, params).all():
                taken.setdefault(as_uuid(request_id), {})[int(lot)] = int(credits)
        return taken

    def _load_lots(self, cur: Cur, accounts: set[UUID], lot_ids: set[int]) -> dict[int, Lot]:
        lots: dict[int, Lot] = {}
        s = self.store
        account_list = sorted(accounts)
        for i in range(0, len(account_list), MAX_IN_LIST):
            condition, params = s.in_list(
                "account_id", [s.uuid(a) for a in account_list[i : i + MAX_IN_LIST]]
            )
            sql = f"SELECT {LOT_COLUMNS} FROM {LOTS} WHERE {condition} AND remaining > 0"
            for row in cur.run(sql, params).all():
                lots[int(row[0])] = _lot(row)
        wanted = sorted(lot_ids - lots.keys())
        for i in range(0, len(wanted), MAX_IN_LIST):
            condition, params = s.in_list("lot", wanted[i : i + MAX_IN_LIST])
            for row in cur.run(f"SELECT {LOT_COLUMNS} FROM {LOTS} WHERE {condition}", params).all():
                lots[int(row[0])] = _lot(row)
        return lots

    def _write(
        self,
        cur: Cur,
        totals: list[Any],
        lots: list[Lot],
        taken: dict[UUID, dict[int, int]],
        changed_taken: set[UUID],
        *,
        fresh_lots: set[int],
        fresh_taken: set[Any],
    ) -> None:
        s = self.store
        cur.run(
            f"INSERT INTO {TABLE} (id, credits_sold, usd_received, credits_charged, "
            "credits_refunded, credits_adjusted) VALUES (1, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET credits_sold = excluded.credits_sold, "
            "usd_received = excluded.usd_received, credits_charged = excluded.credits_charged, "
            "credits_refunded = excluded.credits_refunded, "
            "credits_adjusted = excluded.credits_adjusted",
            (totals[0], s.money(totals[1]), totals[2], totals[3], totals[4]),
        )
        write_rows(
            cur,
            s,
            f"INSERT INTO {LOTS} ({LOT_COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (lot) DO UPDATE SET remaining = excluded.remaining",
            [
                (
                    lot.lot,
                    s.uuid(lot.account_id),
                    lot.credits,
                    s.money(lot.amount_usd),
                    lot.remaining,
                )
                for lot in lots
            ],
            fresh=fresh_lots,
        )
        write_rows(
            cur,
            s,
            f"INSERT INTO {TAKEN} (request_id, lot, credits) VALUES (%s, %s, %s) "
            "ON CONFLICT (request_id, lot) DO UPDATE SET credits = excluded.credits",
            [
                (s.uuid(request_id), lot, credits)
                for request_id in sorted(changed_taken)
                for lot, credits in sorted(taken[request_id].items())
            ],
            fresh=fresh_taken,
        )


def _lot(row: Sequence[Any]) -> Lot:
    return Lot(int(row[0]), as_uuid(row[1]), int(row[2]), as_decimal(row[3]), int(row[4]))


def read_lots(cur: Cur) -> list[Lot]:
    sql = f"SELECT {LOT_COLUMNS} FROM {LOTS} WHERE remaining > 0 ORDER BY lot"
    return [_lot(row) for row in cur.run(sql).all()]


def remaining(cur: Cur, store: Store, account_id: UUID) -> int:
    """The credits left in one account's lots (its balance, when they agree)."""
    row = cur.run(
        f"SELECT coalesce(sum(remaining), 0) FROM {LOTS} WHERE account_id = %s",
        (store.uuid(account_id),),
    ).one()
    return int(row[0]) if row else 0


def get(cur: Cur) -> SummaryRow:
    """Finance's totals and the FIFO liability; read it in one snapshot
    (``Store.reading()``), so the counters and the lots agree."""
    row = cur.run(
        "SELECT credits_sold, usd_received, credits_charged, credits_refunded, "
        f"credits_adjusted FROM {TABLE} WHERE id = 1"
    ).one()
    position_row = cur.run(
        f"SELECT position FROM {TRACKING_TABLE} WHERE read_model = %s", (Summary.name,)
    ).one()
    lots = read_lots(cur)
    sold, usd, charged, refunded, adjusted = (
        (int(row[0]), as_decimal(row[1]), int(row[2]), int(row[3]), int(row[4]))
        if row
        else (0, Decimal(0), 0, 0, 0)
    )
    return SummaryRow(
        credits_sold=sold,
        usd_received=usd.quantize(fifo.CENT),
        credits_charged=charged,
        credits_refunded=refunded,
        credits_adjusted=adjusted,
        credits_outstanding=sold - charged + refunded + adjusted,
        liability_usd=fifo.liability(lots),
        position=int(position_row[0]) if position_row else 0,
    )
