"""Credentials in text: vendor tokens by their documented shapes, plus high-entropy values
assigned to key-like names.

Vendor patterns (``vendors.py``, 50 shapes) are precise (fixed prefixes, lengths, checksummed
shapes), so they score high and are reported whenever they match: a well-formed token that reads
like a documentation example is flagged ``example=True`` rather than dropped, so that a ``mask`` or
``redact`` rule still covers it while ``block``/``flag`` rules let the docs through. The generic
``name = value`` rules rely on Shannon entropy, score lower, and drop placeholders (``xxxx``,
``<your-key>``, ``${VAR}``): those are not credentials of any shape. Figures: bench/ACCURACY.md.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext, resolve_overlaps
from gateway.checks.secrets.vendors import RULES


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s own character distribution."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


_PLACEHOLDER = re.compile(
    r"(.)\1{5,}"  # xxxxxx, 000000, ******
    r"|(.{4,}?)\2"  # EXAMPLEEXAMPLE, 1234-1234-
    r"|123456|abcdef|qwerty|example|sample|dummy|placeholder|changeme|redacted"
    r"|your[_-]?\w*(?:key|token|secret|pass)"
    r"|\$\{|\$\(|^\$\w|\{\{|<[^>]*>|%s|\.\.\.",  # ${VAR} $(cmd) $VAR {{tmpl}} <token> %s
    re.IGNORECASE,
)
_TRIVIAL_PASSWORDS = frozenset(
    {"password", "passwd", "pass", "secret", "token", "test", "user", "username", "admin", "root"}
)


def is_placeholder(value: str) -> bool:
    """A value shaped like a credential that documentation or templates use in its place."""
    return value.lower() in _TRIVIAL_PASSWORDS or _PLACEHOLDER.search(value) is not None


# Inside a well-formed vendor token: runs, repeats and words that random bodies do not produce.
_EXAMPLE = re.compile(
    r"(.)\1{5,}|(.{4,}?)\2|123456|abcdef|qwerty|example|sample|dummy|placeholder|changeme"
    r"|redacted|fake|test(?:key|token)",
    re.IGNORECASE,
)


def _example(value: str) -> bool:
    return _EXAMPLE.search(value) is not None


# scheme://user:password@host -- database URLs, basic-auth URLs.
_URL_CREDENTIALS = re.compile(
    r"(?i)\b[a-z][a-z0-9+.-]{1,30}://[^\s:/@'\"]{1,128}:(?P<secret>[^\s@/'\"]{1,256})@[\w.-]+"
)
# curl -u user:password / --user "user:password"
_CURL_USER = re.compile(
    r"(?:\s-u|--user)\s*[\\\s]*[\"']?(?P<user>[^\s\"':]*)[\"']?:[\"']?(?P<secret>[^\s\"']+)[\"']?"
)
# Authorization: Bearer <token>, Token/Api-Token/Basic headers and X-...-Key style headers.
_AUTH_HEADER = re.compile(
    r"(?i)(?:authorization|api[_-]?token|x-[\w-]*(?:key|token)|apikey|token)\s*[\"']?\s*:\s*"
    r"(?:(?:bearer|basic|token|api-token)\s+)?(?P<secret>[A-Za-z0-9._~+/=@-]{8,})"
)
# name = value, name: value, "name": "value", NAME=value, name := value
_ASSIGNMENT = re.compile(
    r"(?i)(?P<name>[\w.-]*(?:api[_.-]?key|apikey|secret|passw(?:or)?d|pwd|token|access[_.-]?key"
    r"|private[_.-]?key|client[_.-]?secret|credential|auth[_.-]?key)[\w.-]*)[\"']?"
    r"\s*(?::=|=>|[:=])\s*[\"'`]?(?P<secret>[^\s\"'`,;)]{8,256})"
)
# The key-like words of ``_ASSIGNMENT``'s name: every match holds one inside its name.
_ASSIGNMENT_KEY = re.compile(
    r"(?i)api[_.-]?key|apikey|secret|passw(?:or)?d|pwd|token|access[_.-]?key|private[_.-]?key"
    r"|client[_.-]?secret|credential|auth[_.-]?key"
)
_NAME_CHAR = re.compile(r"[\w.-]")


def _assignments(text: str) -> Iterator[re.Match[str]]:
    r"""``_ASSIGNMENT.finditer(text)``, tried only where a key-like word occurs.

    A match's name is a run of ``[\w.-]`` holding a key-like word, and ``finditer`` starts it at
    the run's first character (the leading ``[\w.-]*`` absorbs any prefix) or at the end of the
    previous match; so matching at that point for each key-like word gives the same matches,
    without the regex being tried at every position of the text.
    """
    done = 0  # where finditer would resume
    tried = -1  # run start already tried without a match
    for hit in _ASSIGNMENT_KEY.finditer(text):
        if hit.start() < done:
            continue
        start = hit.start()
        while start > done and _NAME_CHAR.match(text, start - 1):
            start -= 1
        if start == tried:
            continue
        m = _ASSIGNMENT.match(text, start)
        if m is None:
            tried = start
            continue
        yield m
        done = m.end()


# Literal anchors: every rule contains one of these (compared lower-case), so text with none of them
# cannot match and ``prefilter`` can say so without running the patterns.
_GENERIC_ANCHORS = (
    "aws", "private key", "://", "-u", "--user", "authori", "token", "key", "secret", "pass",
    "pwd", "credential",
)  # fmt: skip
_ANCHORS = re.compile(
    "|".join(re.escape(k) for k in dict.fromkeys(
        [k for rule in RULES for k in rule.keywords if k != "."] + list(_GENERIC_ANCHORS)))
    + r"|[mno][a-z0-9_-]{23,27}\.[a-z0-9_-]{6}\."  # Discord bot tokens carry no literal
)

# Entropy floor for generic values: random 16+ char tokens score >= 3.5 bits/char, words and
# identifiers mostly below 3.0; mixed short passwords sit around 3.0-3.3.
_MIN_GENERIC_ENTROPY = 3.0


_HEX = re.compile(r"[0-9a-fA-F-]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Names that hold identifiers or metadata about a secret rather than the secret itself.
_NOT_A_SECRET_NAME = re.compile(r"(?i)(?:id|ids|name|type|url|uri|path|file|length|version)$")


def _looks_random(value: str, min_entropy: float) -> bool:
    """Mixed letters/digits, not a placeholder, and enough entropy for its alphabet.

    Hex strings carry at most 4 bits/char (a 16-char hex token averages ~3.2), so they get a
    0.3 lower floor than mixed-case values.
    """
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    floor = min_entropy - 0.3 if _HEX.fullmatch(value) else min_entropy
    return classes >= 2 and shannon_entropy(value) >= floor and not is_placeholder(value)


# Prefixes of vendor tokens longer than a stream's usual hold-back (Atlassian ~200 chars, Dropbox
# ~140, Vault ~100, JWTs): one at the very end of a partial stream window may be the first part
# of a token whose rest has not arrived, too short yet for its pattern.
_UNFINISHED = re.compile(
    r"(?:ATATT3|sl\.|hv[sb]\.|xox[a-z]|sk-ant-|sk-(?:proj|svcacct|admin)-|pypi-AgE|glc_|sntr[ysu]_"
    r"|eyJ|tskey-|EAAA|SG\.|github_pat_|gl[a-z]{2,6}-|AccountKey=|AKIA|ghp_)[\w\-.=+/~]*\Z"
)


def _unfinished_token(text: str) -> list[Finding]:
    """A token prefix running to the end of a partial window: held back until the rest arrives."""
    m = _UNFINISHED.search(text, max(0, len(text) - 512))
    return [] if m is None else [Finding("SECRET_PREFIX", m.start(), len(text), 0.5)]


class SecretsParams(CheckParams):
    # Bits/char a value assigned to a key-like name needs to count as a secret.
    min_entropy: float = Field(default=_MIN_GENERIC_ENTROPY, ge=0.0, le=8.0)
    # Report generic "name = high-entropy value" findings as well as vendor token shapes.
    generic: bool = True


class SecretsCheck:
    """API keys, tokens, private keys, credentials in URLs and high-entropy assigned values."""

    name: ClassVar[str] = "secrets"
    Params: ClassVar[type[SecretsParams]] = SecretsParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Tokens and JWTs fit; PEM private-key blocks (1.7-3.3 KB) do not, so a stream window may see
    # only part of one -- ``scan`` reports an unterminated BEGIN...PRIVATE KEY header to the end of
    # the window for that reason.
    max_match_chars: ClassVar[int] = 512

    def __init__(self, params: SecretsParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        return _ANCHORS.search(text.lower()) is not None

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        lowered = text.lower()  # once: the prefilter and the keyword gates read it
        if _ANCHORS.search(lowered) is None:
            return []
        # Keyword gates are exact only for ASCII (IGNORECASE lets the Kelvin sign match 'k').
        low = lowered if text.isascii() else None
        found = list(self._vendor(text, low))
        if "-----BEGIN" in text:
            found += self._unterminated_pem(text, ctx)
        if not ctx.final:
            found += _unfinished_token(text)
        if self.params.generic:
            found += self._generic(text, low)
        return resolve_overlaps(found)

    def _vendor(self, text: str, low: str | None) -> Iterator[Finding]:
        for rule in RULES:
            if low is not None and not any(k in low for k in rule.keywords):
                continue
            for m in rule.pattern.finditer(text):
                if rule.validate is None or rule.validate(m):
                    # A well-formed credential is reported even when it reads like a docs example
                    # (masking it costs nothing); ``example`` lets block/flag rules pass it.
                    value = m.group(rule.group)
                    yield Finding(rule.label, m.start(rule.group), m.end(rule.group), rule.score,
                                  example=_example(value))

    @staticmethod
    def _unterminated_pem(text: str, ctx: ScanContext) -> list[Finding]:
        m = re.search(r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----", text)
        if m is None or "-----END" in text[m.end() :]:
            return []
        # On a final text a lone header is a truncated paste; mid-stream the rest may follow.
        return [Finding("PRIVATE_KEY", m.start(), len(text), 0.9)]

    def _generic(self, text: str, low: str | None) -> Iterator[Finding]:
        min_entropy = self.params.min_entropy

        def gate(*keywords: str) -> bool:
            return low is None or any(k in low for k in keywords)

        for m in _URL_CREDENTIALS.finditer(text) if gate("://") else ():
            if not is_placeholder(m.group("secret")) and len(m.group("secret")) >= 3:
                yield Finding("URL_CREDENTIALS", m.start("secret"), m.end("secret"), 0.85)
        for m in _CURL_USER.finditer(text) if gate("-u") else ():
            secret = m.group("secret")
            if len(secret) >= 6 and _looks_random(secret, min_entropy - 0.5):
                yield Finding("BASIC_AUTH_PASSWORD", m.start("secret"), m.end("secret"), 0.8)
        for m in _AUTH_HEADER.finditer(text) if gate("authori", "token", "key") else ():
            if _looks_random(m.group("secret"), min_entropy):
                yield Finding("AUTH_TOKEN", m.start("secret"), m.end("secret"), 0.8)
        assignment = gate("key", "secret", "passw", "pwd", "token", "credential")
        for m in _assignments(text) if assignment else ():
            name, secret = m.group("name"), m.group("secret")
            # Passwords may be short; keys and tokens are long, short values are usually ids.
            min_len = 8 if re.search(r"(?i)pass|pwd", name) else 16
            if (
                len(secret) >= min_len
                and not _NOT_A_SECRET_NAME.search(name)
                and not _UUID.fullmatch(secret)
                and _looks_random(secret, min_entropy)
            ):
                yield Finding("GENERIC_SECRET", m.start("secret"), m.end("secret"), 0.7)
