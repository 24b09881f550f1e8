"""Negative-spike alerts: statistics on the per-minute rollups, and their delivery as
signed, retried, idempotent webhooks (Standard Webhooks v1).

``detection`` is pure statistics; ``evaluator`` decides and stores alerts with their
outbox rows in one transaction; ``delivery`` sends the outbox. See ``docs/alerts.md``.
"""
