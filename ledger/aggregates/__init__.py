"""The event-sourced aggregates: accounts, support requests, invoices and
the price lists, large adjustments awaiting approval, and the receipts that
make commands idempotent."""

from ledger.aggregates.account import CustomerAccount, account_id_for
from ledger.aggregates.adjustment import Adjustment, AdjustmentStatus
from ledger.aggregates.invoice import Invoice, InvoiceStatus
from ledger.aggregates.price_list import PRICE_LISTS_ID, PriceLists
from ledger.aggregates.receipt import CommandReceipt, receipt_id_for
from ledger.aggregates.request import RequestStatus, SupportRequest

__all__ = [
    "PRICE_LISTS_ID",
    "Adjustment",
    "AdjustmentStatus",
    "CommandReceipt",
    "CustomerAccount",
    "Invoice",
    "InvoiceStatus",
    "PriceLists",
    "RequestStatus",
    "SupportRequest",
    "account_id_for",
    "receipt_id_for",
]
