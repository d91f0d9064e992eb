"""Configuration: pydantic models for the YAML file, ``${VAR}`` interpolation and loading.

Every model forbids unknown keys and is frozen, so a typo stops the program at start-up with the
YAML path of the problem (``teams[0].budget.usd: ...``) instead of being silently ignored. Money is
given in USD floats here and converted to integer micro-dollars by the code that uses it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: The URL schemes each store accepts; ``stores/backends.py`` maps every one to its backend.
BUDGET_SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix")
LOG_SCHEMES = ("sqlite", "postgresql", "postgres")
#: Provider kinds: ``openai`` (any OpenAI-compatible API) and ``mock`` are built in; every other
#: provider name is a litellm provider. ``providers.PROVIDERS`` maps each kind to its factory.
ProviderKind = Literal["openai", "mock", "litellm"]
_BUILT_IN_PROVIDERS: dict[str, ProviderKind] = {"openai": "openai", "mock": "mock"}

DEMO_KEY = "sk-gateway-demo"
DEMO_ADMIN_KEY = "sk-gateway-admin-demo"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the YAML path of each problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    admin_keys: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: How long a graceful shutdown waits for in-flight requests and streams.
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    #: HMAC key of the review page's session cookies. Unset: derived from the admin key
    #: digests, so every replica with the same config agrees without a new secret.
    session_secret: str | None = Field(default=None, min_length=16)

    @field_validator("admin_keys")
    @classmethod
    def _no_empty_keys(cls, v: list[str]) -> list[str]:
        return _check_keys(v)


class StoresSettings(_Model):
    budgets: str = "memory://"
    logs: str = "sqlite:///./data/gateway.db"
    #: Bound on every budget-store call, so a frozen store never hangs a request.
    budget_timeout_s: float = Field(default=0.25, gt=0)
    #: A reservation not renewed for this long is given back; bounds what a crashed replica pins.
    budget_hold_ttl_s: float = Field(default=60.0, gt=0)
    #: Prefix of every budget key in Redis (several gateways may share one Redis).
    budget_key_prefix: str = Field(default="gw", pattern=r"^[A-Za-z0-9_.:-]+$")
    #: Records waiting for the background writer; beyond it records are dropped and counted.
    log_queue_size: int = Field(default=10000, ge=1)
    log_batch_size: int = Field(default=500, ge=1)

    @field_validator("budgets")
    @classmethod
    def _budget_scheme(cls, v: str) -> str:
        if not v.startswith(tuple(f"{s}://" for s in BUDGET_SCHEMES)):
            raise ValueError("must start with memory://, sqlite:// or redis://")
        return v

    @field_validator("logs")
    @classmethod
    def _log_scheme(cls, v: str) -> str:
        if not v.startswith(tuple(f"{s}://" for s in LOG_SCHEMES)):
            raise ValueError("must start with sqlite:// or postgresql://")
        return v


class RetentionSettings(_Model):
    """How long rows are kept; None keeps them forever. Open review items are never expired."""

    requests_days: float | None = Field(default=90, gt=0)
    #: Counted from an item's last verdict.
    reviewed_days: float | None = Field(default=180, gt=0)
    interval_s: float = Field(default=3600.0, gt=0)
    #: Rows deleted per statement, so a purge never holds long locks or huge transactions.
    batch_size: int = Field(default=1000, ge=1, le=10000)


AlertKind = Literal["error_rate", "latency_p95", "drift"]
DriftSignal = Literal["flag_rate", "refusal_rate", "output_tokens"]
DRIFT_SIGNALS: tuple[DriftSignal, ...] = ("flag_rate", "refusal_rate", "output_tokens")


class AlertRule(_Model):
    """One SLO or drift rule, evaluated per model over a sliding window (see gateway/slo.py)."""

    kind: AlertKind
    name: str | None = None
    #: error_rate: a fraction of requests (0.05); latency_p95: milliseconds.
    threshold: float | None = Field(default=None, gt=0)
    #: drift: alert when the window's value is this many times above (or below) the baseline.
    factor: float | None = Field(default=None, gt=1)
    signals: list[DriftSignal] = Field(default_factory=lambda: list(DRIFT_SIGNALS))
    models: list[str] | None = None  # omitted: every model
    webhook: str | None = None  # omitted: alerts.webhook

    @model_validator(mode="after")
    def _needs(self) -> AlertRule:
        if self.kind == "drift" and self.factor is None:
            raise ValueError("a drift rule needs 'factor'")
        if self.kind != "drift" and self.threshold is None:
            raise ValueError(f"a {self.kind} rule needs 'threshold'")
        return self


class AlertsSettings(_Model):
    """SLO and drift alerts (budget alerts are set on each budget: alert_at, alert_webhook)."""

    webhook: str | None = None
    window_s: float = Field(default=300.0, gt=0)
    #: Drift compares the window with the trailing baseline before it, this long.
    baseline_s: float = Field(default=86400.0, gt=0)
    check_interval_s: float = Field(default=10.0, gt=0)
    #: Fewer requests than this in the window (or 5x this in the baseline): no verdict.
    min_requests: int = Field(default=20, ge=1)
    #: The same rule does not fire again for the same model and signal within this time.
    cooldown_s: float = Field(default=900.0, ge=0)
    rules: list[AlertRule] = Field(default_factory=list)


class TracingSettings(_Model):
    """OpenTelemetry spans per request (needs the ``otel`` extra); see gateway/tracing.py."""

    enabled: bool = False
    service_name: str = "llm-gateway"


OIDC_EXTRA_HINT = "pip install 'llm-guardrail-gateway[oidc]'"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _https_or_loopback(url: str) -> str:
    """Tokens and codes travel over this URL: plain http only where nobody else can listen."""
    try:
        u = urlsplit(url)
        host = u.hostname
    except ValueError:
        raise ValueError("must be an absolute http(s) URL") from None
    if u.scheme not in ("https", "http") or not host or u.query or u.fragment:
        raise ValueError("must be an absolute http(s) URL without query or fragment")
    if u.scheme == "http" and not is_loopback_host(host):
        raise ValueError("must be https:// (plain http:// is allowed only for a loopback "
                         "host such as 127.0.0.1 or localhost, for local testing)")
    return url


class OidcSettings(_Model):
    """Single sign-on with OpenID Connect for the review page and the admin API (gateway/oidc.py).

    ``roles`` maps values of ``role_claim`` to ``admin`` or ``reviewer:<team>``.
    """

    issuer: str
    client_id: str = Field(min_length=1)
    #: Omitted for a public client (PKCE only); then server.session_secret is required.
    client_secret: str | None = Field(default=None, min_length=1)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    #: The gateway's public URL; the IdP redirects to <this>/ui/oidc/callback.
    redirect_base_url: str
    #: A claim name, or a dotted path into nested claims (``realm_access.roles``).
    role_claim: str = Field(default="groups", min_length=1)
    roles: dict[str, str] = Field(min_length=1)
    #: The claim shown on the page and recorded with verdicts (falls back to
    #: preferred_username, then sub).
    name_claim: str = "email"
    #: Audiences accepted in bearer tokens for the admin API; empty: just client_id.
    audiences: list[str] = Field(default_factory=list)
    label: str = Field(default="single sign-on", min_length=1, max_length=60)
    session_ttl_s: float = Field(default=8 * 3600, ge=1)
    leeway_s: float = Field(default=30, ge=0, le=300)
    timeout_s: float = Field(default=5, gt=0, le=60)
    #: Signing keys are re-fetched after this long, and on a token with an unknown key id,
    #: but not more often than jwks_min_refresh_s (so forged key ids cannot flood the IdP).
    jwks_cache_s: float = Field(default=3600, gt=0)
    jwks_min_refresh_s: float = Field(default=30, ge=0)
    #: On log-out also end the session at the IdP (its end_session_endpoint, if it has one).
    logout_at_provider: bool = True

    @field_validator("issuer")
    @classmethod
    def _secure_issuer(cls, v: str) -> str:
        return _https_or_loopback(v)  # kept exactly: tokens' "iss" must equal it

    @field_validator("redirect_base_url")
    @classmethod
    def _secure_base(cls, v: str) -> str:
        return _https_or_loopback(v).rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include 'openid'")
        return v

    @field_validator("roles")
    @classmethod
    def _role_values(cls, v: dict[str, str]) -> dict[str, str]:
        for claim_value, role in v.items():
            if role != "admin" and not re.fullmatch(r"reviewer:[A-Za-z0-9_.-]+", role):
                raise ValueError(f"{claim_value!r}: {role!r} must be 'admin' or "
                                 "'reviewer:<team>'")
        return v

    @model_validator(mode="after")
    def _library(self) -> OidcSettings:
        try:
            from jwt.algorithms import has_crypto
        except ImportError:
            has_crypto = False
        if not has_crypto:
            raise ValueError("single sign-on needs PyJWT with cryptography, which is not "
                             f"installed: install the gateway's 'oidc' extra ({OIDC_EXTRA_HINT})")
        return self

    def grant(self, values: list[str] | tuple[str, ...]) -> tuple[str, str | None] | None:
        """The role these claim values give: ("admin", None), ("reviewer", team) or None.

        Admin wins; otherwise the first reviewer mapping in the file's order that matches.
        """
        matched = [self.roles[v] for v in self.roles if v in values]
        if "admin" in matched:
            return ("admin", None)
        return ("reviewer", matched[0].split(":", 1)[1]) if matched else None

    @property
    def accepted_audiences(self) -> list[str]:
        return self.audiences or [self.client_id]


class Price(_Model):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class ModelSettings(_Model):
    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    model: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    price: Price | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    #: Output tokens assumed for a budget estimate when the request sets no max_tokens.
    default_max_tokens: int | None = Field(default=None, ge=1)
    #: Embeddings models are listed by /v1/models too; this only documents intent.
    mode: Literal["chat", "embedding"] | None = None

    @property
    def upstream_model(self) -> str:
        return self.model or self.name

    @property
    def kind(self) -> ProviderKind:
        """Which provider implementation serves this model."""
        return _BUILT_IN_PROVIDERS.get(self.provider, "litellm")


Period = Literal["day", "week", "month", "total"]


class BudgetSettings(_Model):
    usd: float | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    period: Period = "month"
    alert_at: list[float] = Field(default_factory=list)
    alert_webhook: str | None = None

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        for x in v:
            if not 0 < x <= 1.0:
                raise ValueError("thresholds are fractions in (0, 1]")
        return sorted(set(v))


class LimitsSettings(_Model):
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)


class KeySettings(_Model):
    """A key with its own name, budget and limits inside a team (keys may also be plain strings)."""

    key: str = Field(min_length=1)
    name: str | None = None
    budget: BudgetSettings | None = None
    limits: LimitsSettings | None = None


class TeamSettings(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    keys: list[str | KeySettings] = Field(default_factory=list)
    reviewer_keys: list[str] = Field(default_factory=list)
    models: list[str] | None = None
    budget: BudgetSettings | None = None
    limits: LimitsSettings | None = None
    policy: str | None = None
    on_store_error: Literal["deny", "allow"] = "deny"

    @field_validator("reviewer_keys")
    @classmethod
    def _no_empty_reviewer_keys(cls, v: list[str]) -> list[str]:
        return _check_keys(v)

    @field_validator("keys")
    @classmethod
    def _no_empty_team_keys(cls, v: list[str | KeySettings]) -> list[str | KeySettings]:
        _check_keys([k if isinstance(k, str) else k.key for k in v])
        return v


class Settings(_Model):
    server: ServerSettings = Field(default_factory=ServerSettings)
    stores: StoresSettings = Field(default_factory=StoresSettings)
    policies_dir: str = "./policies"
    models: list[ModelSettings] = Field(default_factory=list)
    teams: list[TeamSettings] = Field(default_factory=list)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    oidc: OidcSettings | None = None

    @model_validator(mode="after")
    def _cross_check(self) -> Settings:
        names = [m.name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"models: duplicate model names {sorted(dup)}")
        teams = [t.name for t in self.teams]
        dup = {n for n in teams if teams.count(n) > 1}
        if dup:
            raise ValueError(f"teams: duplicate team names {sorted(dup)}")
        for i, team in enumerate(self.teams):
            for m in team.models or []:
                if m not in names:
                    raise ValueError(f"teams[{i}].models: unknown model {m!r}")
        seen: dict[str, str] = {}
        for where, key in self._all_keys():
            digest = key_digest(key)
            if digest in seen:
                raise ValueError(f"{where}: the same key is also used at {seen[digest]}")
            seen[digest] = where
        self._check_oidc(set(teams))
        return self

    def _check_oidc(self, teams: set[str]) -> None:
        if self.oidc is None:
            return
        for value, role in self.oidc.roles.items():
            team = role.partition(":")[2]
            if team and team not in teams:
                raise ValueError(f"oidc.roles[{value!r}]: unknown team {team!r}")
        # The session cookie names the user; without a real secret it could be forged.
        if not (self.server.session_secret or self.oidc.client_secret):
            raise ValueError("server.session_secret: required when oidc has no client_secret "
                             "(it signs the single sign-on sessions)")

    def _all_keys(self) -> list[tuple[str, str]]:
        out = [(f"server.admin_keys[{i}]", k) for i, k in enumerate(self.server.admin_keys)]
        for t, team in enumerate(self.teams):
            for i, k in enumerate(team.keys):
                out.append((f"teams[{t}].keys[{i}]", k if isinstance(k, str) else k.key))
            for i, k in enumerate(team.reviewer_keys):
                out.append((f"teams[{t}].reviewer_keys[{i}]", k))
        return out

    def model(self, name: str) -> ModelSettings | None:
        for m in self.models:
            if m.name == name:
                return m
        return None


def _check_keys(keys: list[str]) -> list[str]:
    for k in keys:
        if not k.strip():
            raise ValueError("a key is empty (is its environment variable set?)")
        if k.startswith("sha256:") and not re.fullmatch(r"sha256:[0-9a-f]{64}", k):
            raise ValueError("a sha256: key must be followed by 64 lowercase hex digits")
    return keys


def key_digest(key: str) -> str:
    """The hex SHA-256 under which a key is stored; ``sha256:<hex>`` keys are already digests."""
    if key.startswith("sha256:"):
        return key[len("sha256:"):]
    return hashlib.sha256(key.encode()).hexdigest()


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error."""
    missing: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    out = _VAR.sub(repl, text)
    if missing:
        raise ConfigError(
            "environment variables not set: " + ", ".join(sorted(set(missing)))
        )
    return out


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "KeySettings") or part.startswith(("function-", "literal")):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def parse_settings(data: Any) -> Settings:
    """Validate a parsed YAML document, raising ConfigError with YAML paths."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("(top level): the configuration must be a mapping")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            lines.append(f"{_format_loc(tuple(err['loc']))}: {err['msg']}")
        text = "\n  ".join(dict.fromkeys(lines))
        raise ConfigError(f"invalid configuration:\n  {text}") from None


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate and validate a YAML configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    # Interpolating parsed values (not the raw text) leaves comments alone and keeps a value
    # with YAML-special characters from changing the document's structure.
    settings = parse_settings(_interpolate_tree(data, os.environ if env is None else env))
    # Relative paths in the file are relative to the file, not to the working directory.
    return settings.model_copy(
        update={"policies_dir": str((p.parent / settings.policies_dir).resolve())}
        if not Path(settings.policies_dir).is_absolute() else {}
    )


def default_settings() -> Settings:
    """The embedded defaults of ``make run``: the mock model, a demo team, SQLite under ./data."""
    return parse_settings({
        "server": {"admin_keys": [os.environ.get("GATEWAY_ADMIN_KEY", DEMO_ADMIN_KEY)]},
        "models": [
            {"name": "mock", "provider": "mock", "price": {"input_per_mtok": 0.15,
                                                           "output_per_mtok": 0.60}},
            {"name": "mock-embedding", "provider": "mock", "mode": "embedding",
             "price": {"input_per_mtok": 0.02, "output_per_mtok": 0.0}},
        ],
        "teams": [{"name": "demo", "keys": [os.environ.get("GATEWAY_DEMO_KEY", DEMO_KEY)],
                   "budget": {"usd": 10.0, "period": "month"}}],
    })


def masked(settings: Settings) -> dict[str, Any]:
    """The resolved configuration with every secret replaced, for ``check-config``."""
    data = settings.model_dump(mode="json")

    def mask(v: str) -> str:
        return v if v.startswith("sha256:") else f"***{v[-4:]}" if len(v) > 12 else "***"

    data["server"]["admin_keys"] = [mask(k) for k in data["server"]["admin_keys"]]
    if data["server"].get("session_secret"):
        data["server"]["session_secret"] = mask(data["server"]["session_secret"])
    if data.get("oidc") and data["oidc"].get("client_secret"):
        data["oidc"]["client_secret"] = mask(data["oidc"]["client_secret"])
    for m in data["models"]:
        if m.get("api_key"):
            m["api_key"] = mask(m["api_key"])
    for t in data["teams"]:
        t["keys"] = [mask(k) if isinstance(k, str) else {**k, "key": mask(k["key"])}
                     for k in t["keys"]]
        t["reviewer_keys"] = [mask(k) for k in t["reviewer_keys"]]
    data["stores"]["budgets"] = _mask_url(data["stores"]["budgets"])
    data["stores"]["logs"] = _mask_url(data["stores"]["logs"])
    return data


def _mask_url(url: str) -> str:
    return re.sub(r"(//[^:/@]+):[^@/]+@", r"\1:***@", url)
