"""Vendor credential shapes: fixed prefixes, alphabets and lengths documented by each provider.

A match of one of these is a well-formed credential whatever its characters spell, so it is always
reported; whether it looks like a documentation example (``AKIAIOSFODNN7EXAMPLE``) is reported
beside it (``Finding.example``) for the policy to weigh. Each rule lists the literal keywords one of
which every match contains, so the check runs a pattern only when a keyword occurs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Rule:
    """One credential shape. ``group`` selects the secret inside the match (0 = all of it)."""

    label: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]  # lower-case; every match contains one
    score: float = 0.95
    group: int = 0
    validate: Callable[[re.Match[str]], bool] | None = None


def _b64json(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return isinstance(orjson.loads(raw), dict)
    except (binascii.Error, ValueError):
        return False


def _valid_jwt(m: re.Match[str]) -> bool:
    header, payload = m.group(0).split(".")[:2]
    return _b64json(header) and _b64json(payload)


def _has_pem_body(m: re.Match[str]) -> bool:
    body = re.sub(r"\s|^[\w-]+:.*$", "", m.group("body"), flags=re.MULTILINE)
    return len(body) >= 32 and re.fullmatch(r"[A-Za-z0-9+/=]+", body) is not None


def _discord_id(m: re.Match[str]) -> bool:
    """A Discord bot token opens with its bot's numeric id (a snowflake), base64-encoded."""
    head = m.group(0).split(".", 1)[0]
    try:
        raw = base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.isdigit() and 17 <= len(raw) <= 20


# Token start: not inside a longer identifier, except after an escaped newline or tab ("\\n")
# of a JSON string or log line, whose letter would otherwise hide the token.
_B = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_E = r"(?![A-Za-z0-9_])"
_ED = r"(?![A-Za-z0-9_-])"  # end, for alphabets with '-'


def _r(label: str, body: str, *keywords: str, score: float = 0.95, end: str = _E) -> Rule:
    return Rule(label, re.compile(_B + body + end), keywords, score)


RULES: tuple[Rule, ...] = (
    _r("AWS_ACCESS_KEY", r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
       "a3t", "akia", "asia", "abia", "acca"),
    Rule(
        "AWS_SECRET_KEY",
        re.compile(
            r"(?i)aws.{0,20}?(?:secret|private)?.{0,10}?key[\"']?\s*(?:[:=]|=>)\s*[\"']?"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        ("aws",),
        group=1,
    ),
    _r("GITHUB_TOKEN", r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})",
       "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    _r("GITLAB_TOKEN",
       r"(?:gl(?:pat|dt|cbt|rt|soat|ft|agent|ffct|sat)-[A-Za-z0-9_-]{20,50}"
       r"|glptt-[A-Za-z0-9_-]{40}|gloas-[A-Za-z0-9_-]{64}|glimt-[A-Za-z0-9_-]{25}"
       r"|GR1348941[A-Za-z0-9_-]{20,50})", "gl", "gr1348941", end=_ED),
    Rule(
        "SLACK_TOKEN",
        re.compile(
            _B + r"(?:xox[baprse]-(?:[0-9]{8,13}-){1,3}[A-Za-z0-9]{8,}(?![A-Za-z0-9#*_-])"
            r"|xoxe(?:\.xox[bp])?-\d-[A-Z0-9]{140,}|xapp-\d-[A-Z0-9]{9,12}-\d{10,13}-[a-f0-9]{64})"
        ),
        ("xox", "xapp-"),
    ),
    Rule(
        "SLACK_WEBHOOK",
        re.compile(
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"[A-Za-z0-9_]{6,}/[A-Za-z0-9_]{6,}/[A-Za-z0-9_/]{8,}"
        ),
        ("hooks.slack.com",),
    ),
    _r("STRIPE_KEY", r"(?:sk|rk)_(?:live|test|prod)_[0-9a-zA-Z]{20,}",
       "_live_", "_test_", "_prod_"),
    _r("GOOGLE_API_KEY", r"AIza[0-9A-Za-z_-]{35}", "aiza", end=_ED),
    _r("ANTHROPIC_API_KEY", r"sk-ant-(?:api|admin|sid)\d\d-[A-Za-z0-9_-]{93}AA", "sk-ant-",
       end=_ED),
    _r("OPENAI_API_KEY",
       r"sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?"
       r"(?:[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|(?<=-)[A-Za-z0-9_-]{80,})", "sk-",
       end=_ED),
    _r("NPM_TOKEN", r"npm_[A-Za-z0-9]{36}", "npm_"),
    _r("PYPI_TOKEN", r"pypi-AgE[A-Za-z0-9_-]{50,}", "pypi-age", end=""),
    _r("SENDGRID_KEY", r"SG\.[\w-]{22}\.[\w-]{43}", "sg.", end=_ED),
    Rule("TELEGRAM_BOT_TOKEN", re.compile(r"(?<!\d)\d{8,10}:AA[\w-]{33}(?![\w-])"), (":aa",)),
    _r("MAILCHIMP_KEY", r"[0-9a-f]{32}-us\d{1,2}", "-us", score=0.9),
    _r("MAILGUN_KEY", r"key-[0-9a-f]{32}", "key-"),
    _r("HASHICORP_VAULT_TOKEN", r"hv[sb]\.[\w-]{90,}", "hvs.", "hvb.", end=""),
    _r("HUGGINGFACE_TOKEN", r"hf_[A-Za-z]{34}", "hf_"),
    _r("NOTION_TOKEN", r"(?:ntn_\d{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})", "ntn_", "secret_"),
    _r("SOURCEGRAPH_TOKEN", r"sgp_(?:local_|[a-fA-F0-9]{16}_)?[a-fA-F0-9]{40}", "sgp_"),
    Rule(
        "AZURE_STORAGE_KEY",
        re.compile(r"AccountKey=(?P<key>[A-Za-z0-9+/]{86}==)"),
        ("accountkey=",),
        group=1,
    ),
    Rule(
        "AZURE_CLIENT_SECRET",
        re.compile(r"(?:(?<![\w~.-])|(?<=\\[nrt]))[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])"),
        ("q~",),
        score=0.85,
    ),
    _r("TWILIO_API_KEY", r"SK[0-9a-f]{32}", "sk"),
    Rule(
        "DISCORD_BOT_TOKEN",
        re.compile(_B + r"[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}" + _ED),
        (".",),
        validate=_discord_id,
    ),
    Rule(
        "DISCORD_WEBHOOK",
        re.compile(
            r"(?:https?://)?(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/"
            r"\d{17,20}/[A-Za-z0-9_-]{60,70}"
        ),
        ("discord",),
    ),
    _r("SHOPIFY_TOKEN", r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}", "shp"),
    _r("DIGITALOCEAN_TOKEN", r"do[por]_v1_[a-f0-9]{64}", "_v1_"),
    _r("DATABRICKS_TOKEN", r"dapi[a-f0-9]{32}(?:-\d)?", "dapi"),
    _r("DOPPLER_TOKEN", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{43}", "dp."),
    _r("LINEAR_API_KEY", r"lin_(?:api|oauth)_[A-Za-z0-9]{40}", "lin_"),
    _r("POSTMAN_API_KEY", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", "pmak-"),
    _r("PULUMI_TOKEN", r"pul-[a-f0-9]{40}", "pul-"),
    _r("GRAFANA_TOKEN", r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})",
       "glsa_", "glc_", end=""),
    _r("NEW_RELIC_KEY", r"NR(?:AK|II|JS)-[A-Z0-9]{27}", "nrak-", "nrii-", "nrjs-"),
    _r("SQUARE_TOKEN", r"(?:EAAA[A-Za-z0-9_-]{60}|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,43})",
       "eaaa", "sq0", end=_ED),
    _r("ATLASSIAN_TOKEN", r"ATATT3[A-Za-z0-9_=-]{180,200}", "atatt3", end=""),
    _r("DROPBOX_TOKEN", r"sl\.[A-Za-z0-9_-]{130,160}", "sl.", end=_ED),
    _r("HEROKU_KEY", r"HRKU-AA[A-Za-z0-9_-]{58}", "hrku-", end=_ED),
    _r("ALIBABA_ACCESS_KEY", r"LTAI[A-Za-z0-9]{20}", "ltai"),
    _r("AGE_SECRET_KEY", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", "age-secret"),
    _r("CLOJARS_TOKEN", r"CLOJARS_[a-z0-9]{60}", "clojars_"),
    _r("REPLICATE_TOKEN", r"r8_[A-Za-z0-9]{37}", "r8_"),
    _r("GROQ_API_KEY", r"gsk_[A-Za-z0-9]{52}", "gsk_"),
    _r("PERPLEXITY_API_KEY", r"pplx-[A-Za-z0-9]{48}", "pplx-"),
    _r("TAILSCALE_KEY",
       r"tskey-(?:auth|api|client|scim|webhook)-[A-Za-z0-9]{10,20}-[A-Za-z0-9]{20,40}", "tskey-"),
    _r("FLYIO_TOKEN", r"fo1_[\w-]{43}", "fo1_", end=_ED),
    _r("FIGMA_TOKEN", r"figd_[\w-]{40}", "figd_", end=_ED),
    _r("PLANETSCALE_TOKEN", r"pscale_(?:tkn|pw|oauth)_[\w.-]{32,64}", "pscale_", end=_ED),
    _r("SENTRY_TOKEN", r"sntr[ysu]_[A-Za-z0-9+/=_]{40,200}", "sntry_", "sntrs_", "sntru_", end=""),
    _r("CONTENTFUL_TOKEN", r"CFPAT-[\w-]{43}", "cfpat-", end=_ED),
    Rule(
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----"
            r"(?P<body>[\s\S]{0,16384}?)-----END[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        ),
        ("private key",),
        score=1.0,
        validate=_has_pem_body,
    ),
    Rule(
        "JWT",
        re.compile(
            _B + r"eyJ[A-Za-z0-9_-]{10,}={0,2}\.eyJ[A-Za-z0-9_-]{10,}={0,2}(?:\.[A-Za-z0-9_-]{8,})?"
        ),
        ("eyj",),
        score=0.9,
        validate=_valid_jwt,
    ),
)  # fmt: skip
