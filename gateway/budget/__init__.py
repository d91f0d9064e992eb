"""Budgets and rate limits: reserve an estimate before the upstream call, settle the actual after.

``budgets`` is the service the request path and the admin API use; ``scopes`` decides which
counters apply to a caller; ``forecast`` projects spend to the end of a period. The counters
themselves live in a budget store (``gateway.stores``).
"""
