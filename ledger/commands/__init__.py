"""The ledger's commands, one module per aggregate, over one command cycle.

- ``cycle.py``: what a command is (``Command[R]``), the idempotency
  fingerprint, and the cycle every command goes through (authorize, replay a
  receipt, decide, save with a receipt, bounded retry);
- ``accounts.py``: ``OpenAccount``, ``AdjustBalance``, ``RecordSubscription``;
- ``requests.py``: ``OpenRequest``, ``RequestPreQuote``, ``Quote``,
  ``AcceptQuote``, ``DeclineQuote``, ``RevisePrice``, ``Charge``, ``Refer``,
  ``Cancel``, ``Dispute``, ``Refund``, ``RejectDispute``;
- ``invoices.py``: ``IssueInvoice``, ``PayInvoice``, ``VoidInvoice``;
- ``price_lists.py``: ``PublishPriceList``;
- ``results.py``: what they return.

Each command is a frozen dataclass of its input; its docstring says which
events it emits and which errors it raises. ``Ledger.execute`` runs one.
"""

from ledger.commands.accounts import AdjustBalance, OpenAccount, RecordSubscription
from ledger.commands.cycle import Command, fingerprint
from ledger.commands.invoices import IssueInvoice, PayInvoice, VoidInvoice
from ledger.commands.price_lists import PublishPriceList
from ledger.commands.requests import (
    AcceptQuote,
    Cancel,
    Charge,
    DeclineQuote,
    Dispute,
    OpenRequest,
    Quote,
    Refer,
    Refund,
    RejectDispute,
    RequestPreQuote,
    RevisePrice,
)
from ledger.commands.results import (
    AdjustBalanceResult,
    ChargeResult,
    InvoiceChangeResult,
    IssueInvoiceResult,
    OpenAccountResult,
    PublishPriceListResult,
    QuoteResult,
    RecordSubscriptionResult,
    RefundResult,
    RequestChangeResult,
)

__all__ = [
    "AcceptQuote",
    "AdjustBalance",
    "AdjustBalanceResult",
    "Cancel",
    "Charge",
    "ChargeResult",
    "Command",
    "DeclineQuote",
    "Dispute",
    "InvoiceChangeResult",
    "IssueInvoice",
    "IssueInvoiceResult",
    "OpenAccount",
    "OpenAccountResult",
    "OpenRequest",
    "PayInvoice",
    "PublishPriceList",
    "PublishPriceListResult",
    "Quote",
    "QuoteResult",
    "RecordSubscription",
    "RecordSubscriptionResult",
    "Refer",
    "Refund",
    "RefundResult",
    "RejectDispute",
    "RequestChangeResult",
    "RequestPreQuote",
    "RevisePrice",
    "VoidInvoice",
    "fingerprint",
]
