"""Integrations: the public event feed, the notifications derived from it,
and signed webhooks delivered from the event log with retries.

- ``feed``: the explicit mapping from domain events to public feed items;
- ``webhooks``: the registry of webhooks (its own tables beside the read models);
- ``delivery``: the worker that posts each subscribed item, exactly-once
  tracked per webhook, retried with back-off.
"""
