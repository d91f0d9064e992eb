"""Prompt-injection heuristics: instruction overrides, jailbreak personas, system-prompt
extraction, fake role markers, and the same phrases hidden in base64/hex/binary or obfuscated
with leetspeak and letter spacing.

Each signal has a weight; weights combine as independent evidence (1 - prod(1 - w)) and the
text is flagged when the combination reaches ``threshold``. The phrases are kept to what
attackers say to the model about the model ("your instructions", "you are now"), which ordinary
questions -- even alarming-sounding ones ("how do I kill a Python process?") -- rarely contain.
Measured on CyberSecEval (recall) and XSTest safe prompts (false positives), bench/ACCURACY.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext

_I = re.IGNORECASE
_PRIOR = (
    r"(?:previous|prior|above|preceding|earlier|former|initial|original|old|existing|given|all)"
)
_RULES = (
    r"(?:instructions?|prompts?|rules|directives?|guidelines|commands?|constraints|restrictions"
    r"|programming|orders|guidance|context|directions|policies|messages?|text|training)"
)
_FILLER = (
    r"(?:\s+(?:all|any|the|your|my|of|those|these|every|everything|about|that"
    r"|you\s+were\s+given))*"
)

# (label suffix, weight, pattern)
_SIGNALS: tuple[tuple[str, float, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "override",
        0.9,
        re.compile(
            rf"\b(?:ignore|disregard|forget|skip|bypass|override|overlook|neglect|abandon|drop"
            rf"|set\s+aside|put\s+aside|stop\s+following|do\s+not\s+follow|don't\s+follow)"
            rf"{_FILLER}\s+(?:{_PRIOR}\s+)?(?:\w+\s+)?{_RULES}\b",
            _I,
        ),
        (
            "ignore",
            "disregard",
            "forget",
            "skip",
            "bypass",
            "override",
            "overlook",
            "neglect",
            "abandon",
            "drop",
            "aside",
            "follow",
        ),
    ),
    (
        "override",
        0.8,
        re.compile(r"\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?above\b", _I),
        ("above",),
    ),
    (
        "override",
        0.7,
        re.compile(
            r"\b(?:ignore|disregard)\s+(?:the|this|that)\s+\w+\s+and\s+(?:instead\s+)?"
            r"(?:say|state|output|print|respond|reply|write|tell|return|answer)\b",
            _I,
        ),
        ("ignore", "disregard"),
    ),
    (
        "override",
        0.7,
        re.compile(
            rf"\b(?:new|updated|real|actual|true)\s+{_RULES}\s*(?::|are\b|is\b)"
            r"|\bfrom\s+now\s+on,?\s+(?:you|ignore|only|always|respond)\b",
            _I,
        ),
        ("new", "updated", "real", "actual", "true", "from"),
    ),
    (
        "jailbreak",
        0.9,
        re.compile(
            r"\bDAN\b(?=.{0,200}\b(?:anything|now|mode|jailbr))|\bdo\s+anything\s+now\b"
            r"|\b(?:jailbreak|jailbroken|unrestricted|dan)\s+mode\b"
            r"|\bjailbr(?:eak|oken)\b",
            _I | re.DOTALL,
        ),
        ("dan", "anything", "mode", "jailbr"),
    ),
    (
        "jailbreak",
        0.6,
        re.compile(
            r"\byou\s+are\s+(?:now|no\s+longer)\b|\bact\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered"
            r"|uncensored|evil|jailbroken)|\bpretend\s+(?:that\s+)?you\s+(?:are|have)\s+no\b"
            r"|\b(?:no|without\s+(?:any\s+)?)\s*(?:ethical|moral|content)\s+(?:guidelines|restrictions"
            r"|limits|filters?|boundaries)|\bhas\s+no\s+(?:special\s+)?(?:filter(?:ing|s)?|restrictions)"
            r"|\b(?:system|admin|maintenance|sudo|debug|root)\s+mode\b"
            r"|\b(?:enable|activate|enter|switch\s+to)\s+\w+\s+mode\b",
            _I,
        ),
        ("you", "act", "pretend", "ethical", "moral", "content", "filter", "restriction", "mode"),
    ),
    (
        # Weak alone ("developer mode" is also a browser feature); with another signal it counts.
        "jailbreak",
        0.5,
        re.compile(
            r"\b(?:developer|god)\s+mode\b|\bwithout\s+(?:any\s+)?(?:restrictions|limits|filters"
            r"|censorship)\b|\b(?:unrestricted|unfiltered|uncensored)\b",
            _I,
        ),
        ("mode", "without", "unrestricted", "unfiltered", "uncensored"),
    ),
    (
        "extraction",
        0.9,
        re.compile(
            r"\b(?:repeat|reveal|print|show|output|display|leak|dump|disclose|recite|tell\s+me"
            r"|give\s+me|share|what\s+(?:is|are|was|were))\s+(?:me\s+)?(?:back\s+)?(?:all\s+)?"
            r"(?:your|the)\s+(?:\w+\s+)?(?:system\s+prompt|system\s+message|initial\s+prompt"
            r"|hidden\s+(?:prompt|instructions)|original\s+instructions|initial\s+instructions"
            r"|instructions|prompt|rules|configuration)\b",
            _I,
        ),
        ("prompt", "message", "instruction", "rules", "configuration"),
    ),
    (
        "extraction",
        0.7,
        re.compile(
            r"\b(?:what(?:'s|\s+is|\s+are)|tell\s+me|give\s+me|share|reveal|say|spell)\s+"
            r"(?:me\s+)?(?:your|the|our)\s+(?:\w+\s+)?(?:password|passcode|secret(?:\s+key|\s+word)?"
            r"|api\s+key|access\s+code)\b",
            _I,
        ),
        ("pass", "secret", "api", "access"),
    ),
    (
        "authority",
        0.6,
        re.compile(
            r"\bI(?:'m|\s+am)\s+(?:your|the|an?)\s+(?:developer|creator|administrator|admin|owner"
            r"|operator|programmer|supervisor)\b|\bI(?:'m|\s+am)\s+God\b|\b[A-Z]{3,}\s+OVERRIDE\b"
            r"|\boverride\s+mode\b|\b(?:enter|entering|activate|activating)\s+(?:\w+\s+){0,3}['\"]?"
            r"\w+\s+mode\b",
            0,
        ),
        (
            "developer",
            "creator",
            "admin",
            "owner",
            "operator",
            "programmer",
            "supervisor",
            "god",
            "override",
            "mode",
        ),
    ),
    (
        "injected_task",
        0.6,
        re.compile(
            r"\bignor(?:e|ing)\s+(?:the|this)\s+(?:\w+\s+){0,2}?(?:function|webpage|page|document"
            r"|article|data|text|email|input|content|code|question|paper|resume)\b"
            r"|\b(?:print|output|state|say|repeat)\s+the\s+following\s*:",
            _I,
        ),
        ("ignor", "following"),
    ),
    (
        "secret_request",
        0.6,
        re.compile(
            r"\b(?:tell|what|share|give|reveal|write|encode|confirm|spell|translate|say|provide|poem"
            r"|haiku|story|acrostic|hint)\b[^.?!\n]{0,40}\b(?:your|the|our)\s+(?:system\s+|secret\s+)?"
            r"(?:password|passphrase|passcode|secret\s+key|secret\s+word)\b"
            r"|\b(?:the\s+user's|the\s+users')\s+(?:\w+\s+){0,2}(?:birth\s*(?:date|day|year|month)"
            r"|e-?mail(?:\s+address)?|password|address|city|bank\s+balance|phone(?:\s+number)?"
            r"|initials|name|location|social\s+security)",
            _I,
        ),
        ("pass", "secret", "user"),
    ),
    (
        "role_marker",
        0.7,
        re.compile(
            r"<\|im_start\|>|<\|system\|>|\[/?INST\]|<<SYS>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:"
            r"|^\s*\[?system\]?\s*:\s*(?:you|ignore|new)",
            _I | re.MULTILINE,
        ),
        ("<|", "inst]", "<<sys", "system", "instruction"),
    ),
)
# Overrides in other languages (FR, ES, PT, IT, DE, NL, EL): "ignore the previous instructions".
_MULTILINGUAL = re.compile(
    r"\b(?:ignore[zr]?|oublie[zr]?|ignora|ignorar|ignore|olvida|esquece|esqueça|ignoriere|ignorieren"
    r"|vergiss|vergessen|negeer|vergeet)\b.{0,40}\b(?:instructions?|instrucciones|instruções|istruzioni"
    r"|anweisungen|instructies|regeln|règles|reglas|regras|regole|consignes|fonction|función)\b"
    r"|αγνοήστε|αγνόησε"
    # Russian, Korean, Hindi, Chinese, Japanese, Arabic: "ignore" near "instructions", either order.
    r"|(?:игнорир|무시|अनदेखी|忽略|無視|تجاهل).{0,30}(?:инструкци|지시|निर्देश|指示|التعليمات)"
    r"|(?:инструкци|지시|निर्देश|指示|التعليمات).{0,30}(?:игнорир|무시|अनदेखी|忽略|無視|تجاهل)"
    # "the password" asked for in other languages.
    r"|\b(?:la|le|das|a|sua|tu|ihr|il|de)\s+(?:contraseña|mot\s+de\s+passe|password|passwort"
    r"|senha|wachtwoord)\b|パスワード|비밀번호|密码",
    _I,
)
# Every match of ``_MULTILINGUAL`` in ASCII text contains one of these.
_MULTILINGUAL_ASCII = (
    "ignor", "oubli", "olvida", "esquece", "vergiss", "vergessen", "negeer", "vergeet", "pass",
    "senha", "wachtwoord",
)  # fmt: skip

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_SPACED = re.compile(r"\b(?:\w[\s._*-]){3,}\w\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){16,}")
_BINARY = re.compile(r"\b(?:[01]{8}\s?){6,}")
_PREFILTER = re.compile(
    r"i'm|i am|overrid|following|password|passphrase|passcode|secret|user's|users'"
    r"|ignor|disregard|forget|skip|bypass|overrid|overlook|neglect|abandon|drop|aside|follow"
    r"|above|new|updated|real|actual|true|from now|dan|anything|mode|jailbr|you are|act as|pretend"
    r"|ethical|moral|content|filter|repeat|reveal|print|show|output|display|leak|dump|disclose"
    r"|recite|tell|give|share|what|say|spell|<\||\[/?inst|<<sys|system|oubli|olvid|esque|vergi"
    r"|negeer|vergeet|αγν",
    _I,
)


def _decoded_payloads(text: str) -> Iterator[tuple[int, int, str]]:
    """Text hidden in base64, hex or binary blobs, with the blob's span."""
    for m in _BASE64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        yield m.start(), m.end(), raw.decode("utf-8", "ignore")
    for m in _HEX.finditer(text):
        digits = re.sub(r"[\s:]", "", m.group(0))
        try:
            yield m.start(), m.end(), bytes.fromhex(digits).decode("utf-8", "ignore")
        except ValueError:
            continue
    for m in _BINARY.finditer(text):
        bits = m.group(0).split()
        if all(len(b) == 8 for b in bits):
            yield m.start(), m.end(), bytes(int(b, 2) for b in bits).decode("utf-8", "ignore")


def _is_readable(decoded: str) -> bool:
    """Natural-language text (not binary noise): mostly letters and spaces, several words."""
    if len(decoded) < 12:
        return False
    plain = sum(c.isalpha() or c in " .,?!'" for c in decoded)
    return plain / len(decoded) >= 0.85 and decoded.count(" ") >= 2


def _deobfuscated(text: str) -> str:
    """Leetspeak undone and letter-spaced words ("i g n o r e") joined."""
    joined = _SPACED.sub(lambda m: re.sub(r"[\s._*-]", "", m.group(0)), text)
    return joined.translate(_LEET)


def _plain_signals(text: str) -> Iterator[tuple[float, int, int]]:
    # Keyword gates are exact only for ASCII: under IGNORECASE the Kelvin sign matches 'k'.
    low = text.lower() if text.isascii() else None
    for _, weight, pattern, keywords in _SIGNALS:
        if low is not None and not any(k in low for k in keywords):
            continue
        for m in pattern.finditer(text):
            yield weight, m.start(), m.end()
    if low is not None and not any(k in low for k in _MULTILINGUAL_ASCII):
        return
    for m in _MULTILINGUAL.finditer(text):
        yield 0.8, m.start(), m.end()


class PromptInjectionParams(CheckParams):
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)


class PromptInjectionCheck:
    """``PROMPT_INJECTION`` findings over each matched phrase, scored by combined evidence."""

    name: ClassVar[str] = "prompt_injection"
    Params: ClassVar[type[PromptInjectionParams]] = PromptInjectionParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Phrases are short, but encoded payloads are blobs; one longer than this that straddles two
    # stream windows is decoded in neither.
    max_match_chars: ClassVar[int] = 512

    def __init__(self, params: PromptInjectionParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        # Encoded or obfuscated payloads carry no plain keyword, so any blob-like or non-ASCII
        # text goes to the full scan.
        return (
            _PREFILTER.search(text) is not None
            or _BASE64.search(text) is not None
            or _HEX.search(text) is not None
            or _BINARY.search(text) is not None
            or _SPACED.search(text) is not None
            or re.search(r"[0-9@$]", text) is not None
            or not text.isascii()
        )

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        hits = list(_plain_signals(text))
        for start, end, decoded in _decoded_payloads(text):
            # Instructions smuggled past filters in an encoding; any readable sentence hidden that
            # way is suspicious, one that carries an injection phrase is an attack.
            if any(True for _ in _plain_signals(decoded)):
                hits.append((0.9, start, end))
            elif _is_readable(decoded):
                hits.append((0.6, start, end))
        obfuscated = _deobfuscated(text)
        if obfuscated != text and len(obfuscated) == len(text):
            # Same length: offsets still point at the right characters.
            hits += [(w * 0.9, s, e) for w, s, e in _plain_signals(obfuscated)]
        elif obfuscated != text:
            hits += [(w * 0.9, 0, len(text)) for w, _, _ in _plain_signals(obfuscated)]
        if not hits:
            return []
        miss = 1.0
        for weight, _, _ in hits:
            miss *= 1.0 - weight
        score = round(1.0 - miss, 4)
        if score < self.params.threshold:
            return []
        spans = sorted({(s, e) for _, s, e in hits})
        return [Finding("PROMPT_INJECTION", s, e, score) for s, e in _merge(spans)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, so redaction gets disjoint ones."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
