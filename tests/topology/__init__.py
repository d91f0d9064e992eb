"""A reusable topology harness: real gateway replicas behind HAProxy, on Redis and PostgreSQL.

- ``cluster.Topology``: the fake upstream, N replicas, HAProxy; SIGKILL, drain, restart;
  the records in PostgreSQL and a team's budget from the admin API.
- ``replica.Replica``: one ``python -m gateway serve`` process on a fixed loopback port.
- ``haproxy.HAProxy``: Debian's HAProxy running the shipped deploy/haproxy/haproxy.cfg.
- ``load.Load``: mixed client load with each request's outcome as the client saw it.

Fixtures (``conftest.py``): ``topology_database`` and ``topology_redis_prefix`` (per module, so
that one scenario can be checked by several tests), ``topology_figures`` (printed at the end).
"""
