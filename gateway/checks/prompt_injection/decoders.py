"""Text hidden from the phrase signals: base64/hex/binary blobs, leetspeak and letter-spaced
words, Morse code, pig latin and letter-shifted (ROT13, Caesar) sentences, decoded or undone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

# Tried only at the start of a run of its alphabet (the look-behind): every match starts there,
# and trying each position inside a short word would cost the length of the word each time.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}")
# (A hex digit first, so that ``re`` skips other text; the look-behind is the ``\b``.)
_HEX = re.compile(r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F](?:[\s:]?[0-9a-fA-F]{2}){15,}[\s:]?")
_BINARY = re.compile(r"\b(?:[01]{8}\s?){6,}")
# Eight binary digits: every ``_BINARY`` match holds them (a cheap test before the pattern).
_BINARY_GATE = re.compile(r"[01]{8}")

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
# A word with a letter and a leetspeak digit or sign: "1gn0r3", "h@ck", "pa$$word".
# Matches are whole runs of [\w@$] (a suffix of a run has no letter or sign its run lacks), so
# trying only run starts (the look-behind) finds the same ones.
LEET_WORD = re.compile(r"(?<![\w@$])(?=[\w@$]*[A-Za-z])(?=[\w@$]*[013457@$])[\w@$]+")
SPACED = re.compile(r"\b(?:\w[\s._*-]){3,}\w\b")
# Cheap necessary conditions: a ``SPACED`` match holds two one-character words between
# separators, a ``LEET_WORD`` match a leetspeak character.
SPACED_GATE = re.compile(r"[\s._*-]\w[\s._*-]\w[\s._*-]")
_LEET_CHAR = re.compile(r"[013457@$]")
# A rewritten word worth a second scan holds one of these: phrase words and the nouns they go
# with ("1gn0r3 4ll pr3v10us 1nstruct10ns").
_WORTH_RESCAN = re.compile(
    r"i'm|i am|overrid|following|pass|secret|user's|users'|ignor|disregard|forget|skip|bypass"
    r"|overlook|neglect|abandon|drop|aside|follow|above|new|updated|real|actual|true|from now|dan"
    r"|anything|mode|jailbr|you are|act as|pretend|ethical|moral|content|filter|repeat|reveal"
    r"|print|show|output|display|leak|dump|disclose|recite|tell|give|share|what|say|spell|<\|"
    r"|\[/?inst|<<sys|system|instruct|previous|prior|prompt|rule|all|the|refus|sorry|sure|here"
    r"|free|unrestrict|unfilter|godmode",
    re.IGNORECASE,
)


def decoded_payloads(text: str) -> Iterator[tuple[int, int, str]]:
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
    for m in _BINARY.finditer(text) if _BINARY_GATE.search(text) is not None else ():
        bits = m.group(0).split()
        if all(len(b) == 8 for b in bits):
            yield m.start(), m.end(), bytes(int(b, 2) for b in bits).decode("utf-8", "ignore")


def is_readable(decoded: str) -> bool:
    """Natural-language text (not binary noise): mostly letters and spaces, several words."""
    if len(decoded) < 12:
        return False
    plain = sum(c.isalpha() or c in " .,?!'" for c in decoded)
    return plain / len(decoded) >= 0.85 and decoded.count(" ") >= 2


def deobfuscated(text: str) -> tuple[str, bool]:
    """Leetspeak undone in words that mix letters with look-alike digits or signs ("1gn0r3"),
    letter-spaced words ("i g n o r e") joined; and whether any rewritten word is one the
    signals look for (otherwise re-scanning the copy cannot find anything new worth the time)."""
    changed: list[str] = []

    def join(m: re.Match[str]) -> str:
        changed.append(re.sub(r"[\s._*-]", "", m.group(0)).translate(_LEET))
        return changed[-1]

    def unleet(m: re.Match[str]) -> str:
        word = m.group(0).translate(_LEET)
        changed.append(word)
        return word

    out = SPACED.sub(join, text) if SPACED_GATE.search(text) is not None else text
    # Leetspeak words are rewritten only when one of them is worth it ("mp3", "h2o" are not).
    if _LEET_CHAR.search(out) is not None and any(
        _WORTH_RESCAN.search(m.group(0).translate(_LEET)) is not None
        for m in LEET_WORD.finditer(out)
    ):
        out = LEET_WORD.sub(unleet, out)
    return out, any(_WORTH_RESCAN.search(w) is not None for w in changed)

# --- Morse, pig latin, letter shifts ------------------------------------------------------------

MORSE = re.compile(r"(?<![\w.-])(?:[.-]{1,7}(?:\s*/\s*|\s+)){4,}[.-]{1,7}(?![\w.-])")
# Two Morse tokens and the separator between them: every ``MORSE`` match holds one.
MORSE_GATE = re.compile(r"[.-](?:\s*/\s*|\s+)[.-]")
_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", "..--..": "?",
}  # fmt: skip
_PIG_LATIN = re.compile(r"\b[a-z]+(?:ay|way|yay)\b", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z]+")
_SEGMENT = re.compile(r"[^.?!\n:;'\"()]{12,}")
# Frequent English words: a sentence with none of them may be a letter-shifted (ROT13, Caesar)
# one; a shift that makes it mostly these words reveals it.
_COMMON = frozenset(re.findall(r"[a-z]+", """
    the of and to a in is it you that he was for on are with as his they be at one have this
    from or had by what but not all were we when your can said there use an each which she do how
    their if will up about out many then them these so some her would make like him into time has
    look two more write go see no way could people my than first been call who its now find long
    down day did get come made may part previous instructions ignore state password secret tell
    me say
"""))
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_SHIFTS = tuple(str.maketrans(_ALPHABET, _ALPHABET[k:] + _ALPHABET[:k]) for k in range(1, 26))


def morse_spans(text: str) -> Iterator[tuple[int, int]]:
    """Stretches of Morse code that decode to two or more words of eight letters or more."""
    if ("-" not in text and "." not in text) or MORSE_GATE.search(text) is None:
        return
    for m in MORSE.finditer(text):
        # words apart by "/" or by two spaces or more
        tokens = re.sub(r"\s*/\s*|\s{2,}", " / ", m.group(0)).split()
        decoded = "".join(" " if t == "/" else _MORSE_CODE.get(t, "") for t in tokens)
        if decoded.count(" ") >= 1 and len(decoded.replace(" ", "")) >= 8:
            yield m.start(), m.end()


def is_pig_latin(text: str) -> bool:
    if text.lower().count("ay") < 4:
        return False
    pig = len(_PIG_LATIN.findall(text))
    return pig >= 4 and pig * 5 >= len(_WORDS.findall(text)) * 3


def shifted_sentences(text: str) -> Iterator[tuple[int, int, str]]:
    """Stretches of five or more words with no common English word that a letter shift (ROT13,
    Caesar) turns into at least 40% common words: hidden text, with its span."""
    tried = 0
    for m in _SEGMENT.finditer(text):
        segment = m.group(0)
        if not segment.isascii() or not _COMMON.isdisjoint(segment.lower().split()):
            continue  # accented letters or a common word as such: plain text, not a shift
        words = [w for w in _WORDS.findall(m.group(0).lower()) if len(w) > 1]
        if len(words) < 5 or any(w in _COMMON for w in words):
            continue
        tried += 1
        if tried > 8:
            return
        for table in _SHIFTS:
            shifted = [w.translate(table) for w in words]
            common = sum(w in _COMMON for w in shifted)
            if common >= 4 and common * 5 >= len(words) * 2:
                yield m.start(), m.end(), " ".join(shifted)
                break
