"""Phone numbers by the structure of their digit groups, with presidio's phone recognizer
(libphonenumber) as the validator for the ambiguous shapes. Used by ``pii``; not a check itself.

presidio's ``PhoneRecognizer`` runs libphonenumber's matcher over the whole text once per region
(8 by default): most of the ``pii`` check's time, and it still misses national formats of the
regions it does not try ('451 5986', '78 651 450') and numbers libphonenumber calls invalid
('+1-984-182-0190'). Adding regions buys recall with false positives. Here a number is read the
way a person reads one:

1. A *run* is a maximal stretch of digits joined by single separators (space, '.', '-') and
   parentheses, with an optional leading '+' and trailing extension ('x123', 'ext. 12'). Runs are
   taken whole, so a table row or a list of numbers is never cut into a phone-sized piece.
2. The run must parse as [international prefix [(0)]] [(area)] groups [extension], with one kind
   of separator between the groups, 7-15 digits, and no one-digit group after the first.
3. Shapes of other numbers are rejected: dates (2023-05-12, 12.05.2023), dotted IPv4, SSN
   (3-2-4) and ZIP+4 (5-4), card-like runs of four-digit groups, money (after a currency sign).
4. Strong shapes score ``SCORE`` (0.4, presidio's phone score): an international prefix, an area
   code in parentheses, a '(0)' trunk, an extension, or three or more groups (unless they are all
   one or two digits apart by spaces, which is how lists of small numbers look).
5. Weak shapes (two groups, one unbroken run, spaced small numbers) are handed to presidio's
   ``PhoneRecognizer`` on the run alone: a number valid in one of its regions scores ``SCORE``,
   anything else ``WEAK_SCORE``, which only a context word ("phone", "call", "fax", ...) lifts
   over the default threshold.
"""

from __future__ import annotations

import re
from typing import Any, cast

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

SCORE = 0.4
WEAK_SCORE = 0.1
SPACED_SCORE = 0.05
# presidio's phone context plus the labels phone numbers carry in signatures and forms.
CONTEXT = [
    *PhoneRecognizer.CONTEXT,
    "tel",
    "fax",
    "dial",
    "sms",
    "text",
    "message",
    "whatsapp",
    "contact",
    "landline",
    "hotline",
    "office",
    "desk",
]
# Words that make a weak shape a phone number: phone-specific only ("number" alone is as often a
# licence, account or order number; "office" as often an address).
WEAK_CONTEXT = (
    "phone", "telephone", "tel", "cell", "mobile", "call", "fax", "dial", "sms", "text",
    "message", "whatsapp", "contact", "landline", "hotline",
)  # fmt: skip
_WORD = re.compile(r"\w+")

# Digits joined by single separators or parentheses; '+' or '(' may lead.
_RUN = re.compile(
    r"(?:(?<![\w+\-./])|(?<=\\[nrt]))(?<!\d,)(?<!\d:)[+(]?\d(?:[ .\-]?[()]?[ .\-]?\d)*"
    r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
    r"(?![\w@]|[.,\-/]\d)",
    re.IGNORECASE,
)
_SHAPE = re.compile(
    # (a bare "1" before a three-digit area code in parentheses: North America's "1 (465) ...")
    r"(?:(?P<intl>\+\d{1,3}|00\d{1,3}|1(?=[ .\-]?\(\d{3}\)))(?P<trunk>[ .\-]?\(0\))?[ .\-]?)?"
    r"(?:\((?P<area>\d{1,5})\)[ .\-]?)?"
    r"(?P<body>\d{1,12}(?:[ .\-]\d{1,8}){0,6})"
    r"(?P<ext>[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[ .\-]")
_ESCAPE = re.compile(r"\\[nrt]")
# Numbers of an address, not a phone: "Apt. 833 91202 3784", "Suite 400 2100 ...", "# 12".
_ADDRESS_BEFORE = re.compile(
    r"(?:\b(?:apt|apartment|suite|ste|unit|flat|room|rm|box|bldg|building|floor|fl|no)\.?|#)\s?$",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£¥₹]|\b(?:usd|eur|gbp|chf|rs|inr))\s?$", re.IGNORECASE)
# Enough digits in a separator-joined run for any phone number: the cheap trigger.
TRIGGER = re.compile(r"\d(?:[ .\-()]{0,3}\d){6}")


def _is_date(groups: list[str]) -> bool:
    if len(groups) != 3:
        return False
    a, b, c = (int(g) for g in groups)
    if len(groups[0]) == 4:  # yyyy-mm-dd
        return 1 <= b <= 12 and 1 <= c <= 31
    if len(groups[2]) in (2, 4):  # dd-mm-yyyy, mm-dd-yyyy
        return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
    return False


def classify(run: str, before: str = "") -> float | None:
    """The score of a run as a phone number: ``SCORE`` (strong shape), ``WEAK_SCORE`` (needs
    validation or context), ``SPACED_SCORE`` (needs context), or None when it is no phone number
    at all."""
    m = _SHAPE.fullmatch(run)
    if m is None or _CURRENCY_BEFORE.search(before) or _ADDRESS_BEFORE.search(before):
        return None
    intl, area, body = m.group("intl"), m.group("area"), m.group("body")
    groups = _SEPARATORS.split(body)
    separators = set(_SEPARATORS.findall(body))
    digits = len(body) - len(groups) + 1 + len(area or "")
    if intl:
        digits += len(intl) - (2 if intl.startswith("00") else 1)
    if (
        not 7 <= digits <= 15
        or len(separators) > 1
        or any(len(g) == 1 for g in groups[1:])
        # no national plan groups a number 8+4: order and reference numbers (12345678-1234)
        or (len(groups) == 2 and len(groups[0]) > 5 and not (intl or area))
    ):
        return None  # too short or long; mixed separators; ISBNs, versions, enumerations
    if (
        "+" not in run
        and "(" not in run
        and _other_number(run[: m.start("ext")] if m.group("ext") else run)
    ):
        return None
    if intl or area or m.group("trunk") or m.group("ext"):
        return SCORE
    if separators == {" "} and max(map(len, groups)) <= 2:
        return SPACED_SCORE  # also how lists of small numbers and hex dumps look
    return SCORE if len(groups) >= 3 else WEAK_SCORE


def _other_number(core: str) -> bool:
    """Dates, SSNs, ZIP+4, IPv4 and versions, card numbers and long ids (no '+' or '(')."""
    groups = _SEPARATORS.split(core)
    lengths = [len(g) for g in groups]
    separators = set(_SEPARATORS.findall(core))
    return (
        _is_date(groups)
        or lengths in ([3, 2, 4], [5, 4])
        or (separators == {"."} and len(groups) == 4 and max(lengths) <= 3)
        or (len(groups) >= 3 and lengths[:3] == [4, 4, 4])
        or (len(groups) == 1 and lengths[0] > 11)  # national numbers are shorter
    )


def unescaped(text: str) -> str:
    """``text`` with escaped newlines and tabs (``\\n`` in a JSON string or log line) blanked,
    same length: their letter would otherwise glue itself to the next word ('\\nPhone')."""
    return _ESCAPE.sub("  ", text) if "\\" in text else text


def _near(text: str, start: int, end: int, words: tuple[str, ...]) -> bool:
    """One of ``words`` starts one of the four words before or the two after the span."""
    around = _WORD.findall(unescaped(text[max(0, start - 60) : start]))[-4:]
    around += _WORD.findall(unescaped(text[end : end + 30]))[:2]
    return any(w.lower().startswith(words) for w in around)


class StructuredPhoneRecognizer(LocalRecognizer):
    """``PHONE_NUMBER`` by digit-group structure; presidio's recognizer validates weak shapes."""

    def __init__(self, validator: PhoneRecognizer | None = None) -> None:
        self._validator = validator or PhoneRecognizer()
        super().__init__(
            supported_entities=["PHONE_NUMBER"],
            supported_language="en",
            context=list(CONTEXT),
            name="StructuredPhoneRecognizer",
        )

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        if "PHONE_NUMBER" not in entities or TRIGGER.search(text) is None:
            return results
        for run in _RUN.finditer(text):
            start, end = run.span()
            score = classify(run.group(0), text[max(0, start - 6) : start])
            if score is None:
                continue
            if score == WEAK_SCORE and self._valid(run.group(0)):
                score = SCORE
            results.append(self._result(start, end, score))
        return results

    def enhance_using_context(
        self,
        text: str,
        raw_recognizer_results: list[RecognizerResult],
        other_raw_recognizer_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts | None,
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Weak shapes stay only next to a phone word (or one of the rule's context words), at
        ``SCORE``; the engine's context enhancer then treats them like any other number."""
        words = (*WEAK_CONTEXT, *(w.lower() for w in context or ()))
        kept = []
        for r in raw_recognizer_results:
            if r.score < SCORE:
                if not _near(text, r.start, r.end, words):
                    continue
                r.score = SCORE
            kept.append(r)
        return kept

    def _valid(self, window: str) -> bool:
        """presidio's recognizer (libphonenumber, its regions) accepts the run as a number."""
        found = self._validator.analyze(window, ["PHONE_NUMBER"], cast(NlpArtifacts, None))
        return any(r.end - r.start >= len(window) - 1 for r in found)

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        meta: dict[str, Any] = {
            RecognizerResult.RECOGNIZER_NAME_KEY: "StructuredPhoneRecognizer",
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
        }
        return RecognizerResult("PHONE_NUMBER", start, end, score, recognition_metadata=meta)
