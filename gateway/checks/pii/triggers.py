"""Cheap necessary conditions per PII entity, tested in one pass: a recognizer runs only when one
of its requested entities has its trigger in the text (EMAIL needs an '@', CREDIT_CARD twelve
digits in a run, ...)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.checks.pii.phone import TRIGGER as _PHONE_TRIGGER

DEFAULT_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
)
# Entities whose every match contains a digit: their trigger, unless ``_TRIGGERS`` has a better one.
_DIGIT_ENTITIES = frozenset({"UK_NHS", "US_ITIN", "US_BANK_NUMBER", "US_PASSPORT", "CRYPTO"})
_DIGIT = re.compile(r"\d")
# recognizers (same flags: presidio matches case-insensitively).
_TRIGGERS: dict[str, re.Pattern[str]] = {
    "EMAIL_ADDRESS": re.compile("@"),
    "CREDIT_CARD": re.compile(r"\d(?:[- ]?\d){11}"),  # 12+ digits, single separators
    "IBAN_CODE": re.compile(r"[A-Z]{2}[0-9]{2}", re.IGNORECASE),
    "US_SSN": re.compile(r"\d{3}[- .]?\d{2}[- .]?\d{4}"),  # nine digits
    "IP_ADDRESS": re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d|:[0-9A-Fa-f]{0,4}:"),  # v4 / v6
    "PHONE_NUMBER": _PHONE_TRIGGER,
}
# ``_TRIGGERS`` evaluated in one pass (``_fired``): every digit-bearing trigger match lies in one
# maximal run of digits, spaces, '.', '-' and parentheses that starts with a digit (a *cluster*),
# and an IBAN trigger's digits start one (a letter precedes them); so the triggers are tried only
# on clusters long enough for them, instead of at every position of the text.
_CLUSTER = re.compile(r"\d[\d .\-()]*")
_IPV4_TRIGGER = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_TRIGGER = re.compile(r":[0-9A-Fa-f]{0,4}:")
# entity -> (fewest characters of a cluster holding a match, the trigger's digit part)
_CLUSTER_TRIGGERS: dict[str, tuple[int, re.Pattern[str]]] = {
    "CREDIT_CARD": (12, _TRIGGERS["CREDIT_CARD"]),
    "US_SSN": (9, _TRIGGERS["US_SSN"]),
    "PHONE_NUMBER": (7, _TRIGGERS["PHONE_NUMBER"]),
    "IP_ADDRESS": (7, _IPV4_TRIGGER),
}
# presidio's IP patterns; all but "IPv4" need a ':' in the match.


def _token_start(text: str, i: int, floor: int) -> int:
    while i > floor and not text[i - 1].isspace():
        i -= 1
    return i


def _fires(trigger: re.Pattern[str] | None, text: str) -> bool:
    return trigger is None or trigger.search(text) is not None


def _fired(text: str, entities: Sequence[str], first: bool = False) -> dict[str, bool]:
    """``{e: _fires(_TRIGGERS.get(e), text) for e in entities}``, in one pass over the text;
    with ``first``, only until one fires (then any value is the right answer to "does any")."""
    fired = {e: e not in _TRIGGERS for e in entities}
    if first and any(fired.values()):
        return fired
    pending = {e for e in entities if e in _TRIGGERS}
    if "EMAIL_ADDRESS" in pending:
        fired["EMAIL_ADDRESS"] = "@" in text
        pending.discard("EMAIL_ADDRESS")
    if "IP_ADDRESS" in pending and ":" in text and _IPV6_TRIGGER.search(text) is not None:
        fired["IP_ADDRESS"] = True
        pending.discard("IP_ADDRESS")
    if not pending or (first and any(fired.values())):
        return fired
    iban = _TRIGGERS["IBAN_CODE"]
    for m in _CLUSTER.finditer(text):
        start, end = m.span()
        size = end - start
        if size < 2:
            continue
        for entity in tuple(pending):
            if entity == "IBAN_CODE":
                hit = start >= 2 and iban.match(text, start - 2) is not None
            else:
                least, trigger = _CLUSTER_TRIGGERS[entity]
                hit = size >= least and trigger.search(text, start, end) is not None
            if hit:
                fired[entity] = True
                pending.discard(entity)
                if first:
                    return fired
        if not pending:
            break
    return fired


def _combined_trigger(entities: Sequence[str]) -> re.Pattern[str] | None:
    """A regex that finds something wherever any entity's trigger does; None: no cheap test."""
    parts: list[str] = []
    for entity in entities:
        trigger = _TRIGGERS.get(entity)
        if trigger is None and entity not in _DIGIT_ENTITIES:
            return None
        part = trigger.pattern if trigger is not None else r"\d"
        parts.append(f"(?i:{part})" if trigger is not None and trigger.flags & re.I else part)
    return re.compile("|".join(f"(?:{p})" for p in dict.fromkeys(parts)))

