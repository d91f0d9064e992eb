"""The built-in demo keys are public: ``serve`` refuses to accept them on a non-loopback bind.

``make run`` serves the demo with ``sk-gateway-demo`` / ``sk-gateway-admin-demo`` (printed in
the README), which is fine on 127.0.0.1 and dangerous on any other interface: there, every
reader of the README is an admin. So a bind that other machines can reach must not accept a
demo key, whether it comes from the embedded defaults or from a config file that copied one
(as a plaintext key or as its ``sha256:`` digest).
"""

from __future__ import annotations

import ipaddress

from gateway.settings import DEMO_ADMIN_KEY, DEMO_KEY, Settings, key_digest

_DEMO_DIGESTS = frozenset(key_digest(k) for k in (DEMO_KEY, DEMO_ADMIN_KEY))


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, or "" (every interface)


def demo_keys_in(settings: Settings) -> list[str]:
    """The config paths of the keys that are a built-in demo key."""
    found = [f"server.admin_keys[{i}]" for i, k in enumerate(settings.server.admin_keys)
             if key_digest(k) in _DEMO_DIGESTS]
    for t, team in enumerate(settings.teams):
        found += [f"teams[{t}].keys[{i}]" for i, k in enumerate(team.keys)
                  if key_digest(k if isinstance(k, str) else k.key) in _DEMO_DIGESTS]
        found += [f"teams[{t}].reviewer_keys[{i}]" for i, k in enumerate(team.reviewer_keys)
                  if key_digest(k) in _DEMO_DIGESTS]
    return found


def demo_keys_exposed(settings: Settings, host: str) -> str | None:
    """Why serving ``settings`` on ``host`` must not start, or None when it may."""
    if is_loopback(host):
        return None
    found = demo_keys_in(settings)
    if not found:
        return None
    return (
        f"gateway: refusing to serve on {host or 'every interface'}: the built-in demo keys "
        f"are public, and this configuration accepts them ({', '.join(found)}).\n"
        "  Either serve on this machine only: --host 127.0.0.1 (the default),\n"
        "  or set keys of your own. Without --config: GATEWAY_DEMO_KEY=<client key> and "
        "GATEWAY_ADMIN_KEY=<admin key>\n"
        "  in the environment; with a config file: your own keys in it.\n"
        "  A new key: python -c \"import secrets; print('sk-' + secrets.token_urlsafe(32))\"")
