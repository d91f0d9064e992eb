"""What a valid config can still get wrong, told before it serves: demo keys, placeholders.

The built-in demo keys are public: ``serve`` refuses to accept them on a non-loopback bind.
``make run`` serves the demo with ``sk-gateway-demo`` / ``sk-gateway-admin-demo`` (printed in
the README), which is fine on 127.0.0.1 and dangerous on any other interface: there, every
reader of the README is an admin. So a bind that other machines can reach must not accept a
demo key, whether it comes from the embedded defaults or from a config file that copied one
(as a plaintext key or as its ``sha256:`` digest).

``config_warnings`` names the rest, which ``check-config`` prints (and ``serve`` too): a key
still holding the example's placeholder, and a provider key left empty (typically an unset
``${VAR:-}``) for a provider that then refuses every request. Warnings, not errors: a config
may list a provider that this deployment does not use yet (``check-config --strict`` for CI).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from gateway.settings import DEMO_ADMIN_KEY, DEMO_KEY, Settings, key_digest

_DEMO_DIGESTS = frozenset(key_digest(k) for k in (DEMO_KEY, DEMO_ADMIN_KEY))
#: How example configs spell "put your key here" (``sk-admin-change-me``).
_PLACEHOLDER = re.compile(r"change[-_]?me|replace[-_]?me|placeholder|your[-_]?key",
                          re.IGNORECASE)
_NEW_KEY = "python -c \"import secrets; print('sk-' + secrets.token_urlsafe(32))\""


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, or "" (every interface)


def _keys(settings: Settings) -> Iterator[tuple[str, str]]:
    """Every key of the config, with its path."""
    for i, k in enumerate(settings.server.admin_keys):
        yield f"server.admin_keys[{i}]", k
    for t, team in enumerate(settings.teams):
        for i, entry in enumerate(team.keys):
            yield f"teams[{t}].keys[{i}]", entry if isinstance(entry, str) else entry.key
        for i, k in enumerate(team.reviewer_keys):
            yield f"teams[{t}].reviewer_keys[{i}]", k


def demo_keys_in(settings: Settings) -> list[str]:
    """The config paths of the keys that are a built-in demo key."""
    return [path for path, key in _keys(settings) if key_digest(key) in _DEMO_DIGESTS]


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
        f"  A new key: {_NEW_KEY}")


def config_warnings(settings: Settings) -> list[str]:
    """What in a valid config is likely a mistake; never quotes a key."""
    out = []
    for path, key in _keys(settings):
        if key_digest(key) in _DEMO_DIGESTS:
            out.append(f"{path} is the built-in demo key: it is public, and gateway serve "
                       "refuses it on any host but loopback")
        elif not key.startswith("sha256:") and _PLACEHOLDER.search(key):
            out.append(f"{path} is a placeholder: set a key of your own ({_NEW_KEY})")
    for i, m in enumerate(settings.models):
        where = f"models[{i}] ({m.name})"
        if m.kind == "openai" and not m.api_key and _is_openai(m.api_base):
            state = "no api_key" if m.api_key is None else "api_key is empty"
            out.append(f"{where}: {state}: OpenAI refuses every request without one (401); "
                       "is OPENAI_API_KEY set?")
        elif m.kind == "litellm" and m.api_key == "":
            out.append(f"{where}: api_key is empty (an unset variable?): litellm then looks "
                       f"for {m.provider.upper()}_API_KEY (or the provider's own credentials) "
                       "in the server's environment, else the provider refuses every request")
    return out


def _is_openai(api_base: str | None) -> bool:
    """OpenAI's own API (the default base URL), which always needs a key."""
    return api_base is None or urlsplit(api_base).hostname == "api.openai.com"
