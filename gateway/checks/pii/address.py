"""Street addresses by their shape: a house number, street words and a street-type word, with an
optional unit ("Apt. 4") and city/state/postcode tail. Used by ``pii`` when NER is on.

spaCy's model tags cities and countries (GPE) but rarely a whole street address, so presidio with
the official model misses most of them; this recognizer adds ``STREET_ADDRESS`` to the entities a
rule with ``spacy_model`` may ask for. The street-type words are USPS suffix abbreviations and the
common words of UK, Canadian and Australian addresses.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

_TYPES = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Square"
    "|Sq|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Loop|Trail|Trl|Crescent|Cres|Close"
    "|Grove|Gardens|Gdns|Mews|Row|Walk|Hill|Hills|Heights|Park|Ridge|Run|Path|Pike|Plaza|Point"
    "|Ranch|Via|Well|Wells|Crossing|Xing|Creek|Estates|Falls|Ford|Fork|Glen|Harbor|Haven|Island"
    "|Junction|Knoll|Lake|Landing|Manor|Meadow|Meadows|Mill|Mission|Mount|Orchard|Oval|Pass"
    "|Pine|Pines|Port|Prairie|Shore|Shores|Spring|Springs|Station|Summit|Track|Union|Valley"
    "|View|Village|Ville|Vista|Alley|Bypass|Causeway|Center|Centre|Common|Corner|Green|Hollow"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|#)\.?\s*[\w-]{1,6})?"
_TAIL = (
    r"(?:,?\s+(?:[A-Z][a-z]+\s?){1,3},?\s+(?:[A-Z]{2}\s+)?"
    r"(?:\d{5}(?:-\d{4})?|[A-Z]\d[A-Z]\s?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|\d{4}))?"
)
PATTERN = Pattern(
    "street address",
    rf"\b\d{{1,6}}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){{1,4}}(?:{_TYPES})\b\.?{_UNIT}{_TAIL}",
    0.6,
)


def street_address_recognizer() -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="STREET_ADDRESS",
        patterns=[PATTERN],
        context=["address", "live", "lives", "moved", "street", "ship", "deliver"],
        name="StreetAddressRecognizer",
        global_regex_flags=0,  # case matters: street words are capitalised
    )
