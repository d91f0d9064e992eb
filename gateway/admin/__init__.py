"""The admin API: one module of routes per concern, and the table that mounts them.

Adding admin routes is one module with a ``routes(services)`` function and one entry in
``ROUTES``. Shared helpers (JSON answers, scoping, query parameters) live in ``http``.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import Route

from gateway.admin import budgets, keys, ops, review
from gateway.services import Services

ROUTES: tuple[Callable[[Services], list[Route]], ...] = (
    budgets.routes,  # /admin/teams/{team}/budget, /admin/spend, /admin/requests
    keys.routes,  # /admin/keys
    review.routes,  # /admin/flags, /admin/rules/stats
    ops.routes,  # /admin/switches, /admin/audit, /admin/alerts
)


def admin_routes(s: Services) -> list[Route]:
    return [route for routes in ROUTES for route in routes(s)]
