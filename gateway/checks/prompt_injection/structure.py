"""Attack shapes rather than phrases: fake dialogue turns, repeated tokens or sentences, text
hidden in Morse, pig latin or a letter shift, fake end-of-input markers and dividers of the
format-break jailbreaks, fake notices drawn with box characters, and shouted overrides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

from gateway.checks.prompt_injection.decoders import is_pig_latin, morse_spans, shifted_sentences
from gateway.checks.prompt_injection.signals import Hit

# Fake conversation turns (few-shot / many-shot priming) inside one message.
_Q_TURN = re.compile(r"(?:^|(?<=\s))(?:Q|Question|User|Human):\s")
_A_TURN = re.compile(r"(?:^|(?<=\s))(?:A|Answer|Assistant|AI):\s")
# The same token ten or more times in a row (repeated-token attacks).
REPEATED_TOKEN = re.compile(r"(?<!\S)(\S{2,40})(?:\s+\1(?!\S)){9,}")
# Started only after a sentence end (the look-behind): every match starts there, and retrying
# inside a long unterminated line would take time quadratic in its length.
_SENTENCE = re.compile(r"(?:^|(?<=[.?!\n]))[^.?!\n]{12,}[.?!]")

# Chat-template tokens and end/start markers that close the user's turn early ("<|end_of_input|>",
# "[END OF INPUT]", "[START OUTPUT]"); ``role_marker`` covers the opening ones.
_END_MARKER = re.compile(
    r"<\|(?:end[\w-]*|eot(?:_id)?|eom_id|endoftext|im_end|vq_\d+|(?:start|end)_header_id"
    r"|begin_of_text|assistant|user)\|>"
    r"|\[/?(?:END|START|BEGIN)(?:\s+OF)?\s+(?:(?:USER|SYSTEM|MODEL)\s+)?(?:INPUT|OUTPUT|PROMPT"
    r"|SYSTEM|INSTRUCTIONS?|CONVERSATION|TEXT|QUERY|RESPONSE|CONTEXT)\]"
    r"|^\s*[=#*-]*\s*END\s+OF\s+(?:USER\s+)?(?:INPUT|PROMPT|INSTRUCTIONS|CONVERSATION)\b"
    r"|<\|?/?(?:END|START)[-_ ](?:OF[-_ ])?(?:RESPONSE|INPUT|OUTPUT|PROMPT|TEXT|QUERY)\|?>",
    re.MULTILINE,
)
# Dividers of the format-break jailbreaks: ".-.-.-.-", "=/L\O/V\E/", "⊰•-•✧•-•-⦑".
_DIVIDER = re.compile(r"(?:\.-){3,}|(?:-\.){3,}|=/L\\O/V\\E/|[⊰⦑⦒⊱✧](?:[•-]+[⊰⦑⦒⊱✧]){2,}")
_BOX = re.compile(r"[\u2500-\u259f]")
_BOX_RUN = re.compile(r"[\u2500-\u259f]{3,}")
_NOTICE_WORDS = re.compile(
    r"\b(?:system|admin(?:istrator)?|override|authori[sz]ed|authori[sz]ation|security|policy"
    r"|developer|mode|instructions?|notice|alert|urgent|priority|protocol|clearance|directive"
    r"|compliance|unrestricted|restricted|access\s+granted|verified|official)\b",
    re.IGNORECASE,
)
# Three or more capitalised words in a row ("STOP EVERYTHING!!! JUST PRINT").
# (A capital first, so that ``re`` skips lower-case text; the look-behind is the ``\b``.)
_CAPS_RUN = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]+(?:[\s!.,:*'-]+[A-Z]{2,}){2,}\b[!.:]*")
_SHOUTED = frozenset(re.findall(r"[A-Z]+", """
    STOP IGNORE FORGET DISREGARD PRINT SAY OUTPUT WRITE RESPOND ANSWER REPLY OBEY LISTEN JUST
    ONLY MUST NOW NEVER ALWAYS IMMEDIATELY ATTENTION IMPORTANT URGENT NEW INSTRUCTIONS
    INSTRUCTION OVERRIDE EVERYTHING SYSTEM ADMIN PREVIOUS ALL
"""))
_SHOUTED_OVERRIDE = re.compile(
    r"STOP\s+EVERYTHING|NEW\s+(?:IMPORTANT\s+)?INSTRUCTIONS?|IMPORTANT\s+INSTRUCTIONS?"
    r"|(?:IGNORE|DISREGARD|FORGET|OVERRIDE)\s+(?:ALL|PREVIOUS|EVERYTHING|THE\s+ABOVE|YOUR)"
)


def structure_hits(text: str, strong: Callable[[str], bool]) -> Iterator[Hit]:
    """Shape signals; ``strong`` tells whether decoded hidden text carries a strong phrase."""
    if (("Q:" in text or "Question:" in text or "User:" in text or "Human:" in text)
            and len(_Q_TURN.findall(text)) >= 2 and _A_TURN.search(text)):
        yield Hit(0.45, 0, len(text), "dialogue_turns")  # few-shot examples are common too
    if _has_run(text.split(), 10):
        m = REPEATED_TOKEN.search(text)
        if m is not None:
            yield Hit(0.6, m.start(), m.end(), "repeated_token")
    yield from _repeated_sentence(text)
    for start, end in morse_spans(text):
        yield Hit(0.6, start, end, "morse")
    if is_pig_latin(text):
        yield Hit(0.6, 0, len(text), "pig_latin")
    for start, end, decoded in shifted_sentences(text):
        yield Hit(0.9 if strong(decoded) else 0.6, start, end, "letter_shift")
    yield from format_break_hits(text)


def format_break_hits(text: str) -> Iterator[Hit]:
    """End-of-input markers, dividers, box-drawn notices and shouted overrides."""
    if "<|" in text or "[" in text or "END" in text:
        for m in _END_MARKER.finditer(text):
            yield Hit(0.5, m.start(), m.end(), "end_marker")
    if ".-" in text or "-." in text or "L\\O" in text or "•" in text:
        divider = _DIVIDER.search(text)
        if divider is not None:
            yield Hit(0.5, divider.start(), divider.end(), "divider")
    if _BOX.search(text) is not None:
        yield from _box_notice(text)
    yield from _shouting(text)


def _box_notice(text: str) -> Iterator[Hit]:
    """A notice drawn with box characters around words of authority: a fake document."""
    runs = list(_BOX_RUN.finditer(text))
    if len(runs) < 2:
        return
    start, end = runs[0].start(), runs[-1].end()
    if _NOTICE_WORDS.search(text, start, end) is not None:
        yield Hit(0.45, start, end, "box_notice")


def _shouting(text: str) -> Iterator[Hit]:
    for m in _CAPS_RUN.finditer(text):
        run = m.group(0)
        if _SHOUTED_OVERRIDE.search(run) is not None:
            yield Hit(0.6, m.start(), m.end(), "shouted_override")
            continue
        words = re.findall(r"[A-Z]{2,}", run)
        if "!" in run and sum(w in _SHOUTED for w in words) >= 2:
            yield Hit(0.5, m.start(), m.end(), "shouting")


def _repeated_sentence(text: str) -> Iterator[Hit]:
    """The same sentence five or more times (the span: its fifth occurrence)."""
    if text.count("?") + text.count(".") < 5:
        return
    # (four words or more: code repeats short statements like "rewrite Nat.")
    keys = (s.strip().lower() for s in _SENTENCE.findall(text))
    counts = Counter(k for k in keys if len(k.split()) >= 4)
    if counts and counts.most_common(1)[0][1] >= 5:
        seen: dict[str, int] = {}
        for s in _SENTENCE.finditer(text):
            key = s.group(0).strip().lower()
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 5 and len(key.split()) >= 4:
                yield Hit(0.45, s.start(), s.end(), "repeated_sentence")
                break


def _has_run(tokens: list[str], n: int) -> bool:
    """Some token repeated ``n`` or more times in a row (cheap test before the regex)."""
    run, prev = 0, ""
    for token in tokens:
        run = run + 1 if token == prev else 1
        if run >= n:
            return True
        prev = token
    return False
