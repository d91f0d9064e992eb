"""Street addresses by their shape: a house number, street words and a street-type word, with an
optional unit ("Apt. 4") and city/state/postcode tail. Used by ``pii`` when NER is on.

spaCy's model tags cities and countries (GPE) but rarely a whole street address, so presidio with
the official model misses most of them; this recognizer adds ``STREET_ADDRESS`` to the entities a
rule with ``spacy_model`` may ask for. The street-type words are the USPS suffixes and the common
words of UK, Canadian and Australian addresses; German and French addresses have their own shapes.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

# USPS street suffixes (Publication 28, appendix C1: full words and their abbreviations, plural
# forms too) and the common words of UK, Canadian and Australian addresses.
_TYPES = (
    "Alley|Aly|Anex|Arcade|Avenue|Ave|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch"
    "|Bridge|Brooks?|Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|Circles?|Cir"
    "|Cliffs?|Close|Club|Common|Corners?|Course|Courts?|Ct|Coves?|Creek|Crescent|Cres|Crest"
    "|Crossing|Xing|Crossroad|Curve|Dale|Dam|Divide|Drives?|Dr|Estates?|Expressway|Extensions?"
    "|Falls?|Ferry|Fields?|Flats|Fords?|Forest|Forges?|Forks?|Fort|Freeway|Gardens?|Gdns|Gateway"
    "|Glens?|Greens?|Groves?|Harbors?|Haven|Heights|Highway|Hwy|Hills?|Hollow|Inlet|Islands?"
    "|Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?|Lodge|Loop"
    "|Mall|Manors?|Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval"
    "|Overpass|Parks?|Parkways?|Pkwy|Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza"
    "|Points?|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads?|Rd|Route|Row"
    "|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares?|Sq|Station|Stravenue|Stream|Streets?"
    "|St|Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|Trail|Trl|Tunnel|Turnpike|Underpass"
    "|Unions?|Valleys?|Via|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Ways?|Wells?|Wharf"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|#)\.?\s*[\w-]{1,6}){0,2}"
_TAIL = (
    r"(?:,?\s+(?:[A-Z][a-z]+\s?){1,3},?\s+(?:[A-Z]{2}\s+)?"
    r"(?:\d{5}(?:-\d{4})?|[A-Z]\d[A-Z]\s?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|\d{4}))?"
)
# A line break between a UK flat or studio and its street, raw or escaped inside a JSON string.
_BREAK = r"(?:\s*,\s*|\s*\n\s*|\s*\\n\s*|\s+)"
PATTERNS = [
    Pattern(
        "street address",
        # (after a word boundary, or right after an escaped newline: "\\n1427 Cole Hill")
        rf"(?:\b|(?<=\\n))\d{{1,6}}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){{1,4}}(?:{_TYPES})\b\.?{_UNIT}"
        rf"{_TAIL}",
        0.6,
    ),
    Pattern(
        "flat, then street",
        rf"\b(?:Flat|Studio|Apartment|Unit|Suite)\s+\d{{1,4}}[A-Za-z]?{_BREAK}(?:[A-Z][a-z]+\s+){{1,3}}"
        rf"(?:{_TYPES})\b\.?{_UNIT}{_TAIL}",
        0.6,
    ),
    # German and French shapes: "Goethestraße 12", "12, rue de la Paix", with a postcode after.
    Pattern(
        "street address (de)",
        r"\b[A-ZÄÖÜ][a-zäöüß-]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer)"
        r"\s+\d{1,4}[a-z]?(?:,?\s+\d{5}\s+[A-ZÄÖÜ][\wäöüß-]+)?",
        0.6,
    ),
    Pattern(
        "street address (fr)",
        r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|chemin|allée|place"
        r"|impasse|quai|route|cours|passage|square)\s+(?:(?:de\s+la|de\s+l'|des|du|de|d')\s*)?"
        r"[A-ZÉÈ][\w'-]+(?:\s+[A-ZÉÈ][\w'-]+){0,3}(?:,?\s+\d{5}\s+[A-ZÉÈ][\w'-]+)?",
        0.6,
    ),
]


def street_address_recognizer() -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="STREET_ADDRESS",
        patterns=PATTERNS,
        context=["address", "live", "lives", "moved", "street", "ship", "deliver"],
        name="StreetAddressRecognizer",
        global_regex_flags=0,  # case matters: street words are capitalised
    )
