"""Which backend serves a store URL: one table per store, keyed by the URL's scheme.

Adding a backend is one module beside the others and one entry here (plus its scheme in the
settings' list of accepted schemes, which validates the config before anything is built). Each
factory imports its backend only when it is used, so a gateway on SQLite never loads asyncpg or
the Redis client. Nothing is opened here: the caller opens and closes what it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.settings import StoresSettings
from gateway.stores.budget import BudgetStore
from gateway.stores.logs import LogStore
from gateway.stores.ops import OpsStore

F = TypeVar("F")


def _memory_budgets(s: StoresSettings) -> BudgetStore:
    from gateway.stores.budget_memory import MemoryBudgetStore

    return MemoryBudgetStore()


def _sqlite_budgets(s: StoresSettings) -> BudgetStore:
    from gateway.stores.budget_sqlite import SqliteBudgetStore

    return SqliteBudgetStore(s.budgets)


def _redis_budgets(s: StoresSettings) -> BudgetStore:
    from gateway.stores.budget_redis import RedisBudgetStore

    return RedisBudgetStore(s.budgets, prefix=s.budget_key_prefix, timeout_s=s.budget_timeout_s)


def _sqlite_logs(url: str) -> LogStore:
    from gateway.stores.logs_sqlite import SqliteLogStore

    return SqliteLogStore(url)


def _postgres_logs(url: str) -> LogStore:
    from gateway.stores.logs_postgres import PostgresLogStore

    return PostgresLogStore(url)


def _sqlite_ops(url: str) -> OpsStore:
    from gateway.stores.ops_sqlite import SqliteOpsStore

    return SqliteOpsStore(url)


def _postgres_ops(url: str) -> OpsStore:
    from gateway.stores.ops_postgres import PostgresOpsStore

    return PostgresOpsStore(url)


#: ``stores.budgets``: scheme -> backend (``unix://`` is Redis on a unix socket).
BUDGET_BACKENDS: dict[str, Callable[[StoresSettings], BudgetStore]] = {
    "memory": _memory_budgets,
    "sqlite": _sqlite_budgets,
    "redis": _redis_budgets,
    "rediss": _redis_budgets,
    "unix": _redis_budgets,
}
#: ``stores.logs``: scheme -> backend of the request log.
LOG_BACKENDS: dict[str, Callable[[str], LogStore]] = {
    "sqlite": _sqlite_logs,
    "postgresql": _postgres_logs,
    "postgres": _postgres_logs,
}
#: The operations store (audit log, kill switches) lives in the request log's database.
OPS_BACKENDS: dict[str, Callable[[str], OpsStore]] = {
    "sqlite": _sqlite_ops,
    "postgresql": _postgres_ops,
    "postgres": _postgres_ops,
}


def scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else ""


def _backend(table: dict[str, F], url: str, what: str) -> F:
    factory = table.get(scheme(url))
    if factory is None:
        raise ValueError(f"unsupported {what} store URL scheme: {url.split(':', 1)[0]}")
    return factory


def open_budget_store(stores: StoresSettings) -> BudgetStore:
    """The backend named by ``stores.budgets`` (built, not yet open)."""
    return _backend(BUDGET_BACKENDS, stores.budgets, "budget")(stores)


def open_log_store(url: str) -> LogStore:
    """The backend named by ``stores.logs`` (built, not yet open)."""
    return _backend(LOG_BACKENDS, url, "log")(url)


def open_ops_store(url: str) -> OpsStore:
    """The operations store in the database of ``stores.logs`` (built, not yet open)."""
    return _backend(OPS_BACKENDS, url, "operations")(url)
