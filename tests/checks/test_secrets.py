"""The secrets check: vendor shapes, generic assignments, placeholders and examples."""

from __future__ import annotations

import pytest

from gateway.checks.base import ScanContext
from gateway.checks.registry import build_check
from tests.checks.credentials import CREDENTIALS, in_context
from tests.checks.helpers import IN, labels

# --- secrets ------------------------------------------------------------------------------------

_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
    "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpQIBAAKCAQEAn6/O8li+SX4m98LLYt/PKSzEmQ++ZBD7Loh9P13f4yQ92EF3\n"
    "yxR5MsXFu9PRsrYQA7/4UTPHiC4y2sAVCBg4C2yyBpUEtMQjyCESi6Y=\n"
    "-----END RSA PRIVATE KEY-----"
)
SECRET_CASES = [
    ("key AKIAZ3MSJV4EXAMQ7KEA ok", [("AWS_ACCESS_KEY", "AKIAZ3MSJV4EXAMQ7KEA")]),
    # AWS's documentation key and a placeholder of the full shape: reported (as examples).
    ("aws_access_key: AKIAIOSFODNN7EXAMPLE", [("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")]),
    ("key = AKIAXXXXXXXXXXXXXXXX", [("AWS_ACCESS_KEY", "AKIAXXXXXXXXXXXXXXXX")]),
    ("key = AKIAXXXXXXXXXXXXXXX", []),  # one short: not the shape
    (
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9kAHbK2s"',
        [("AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9kAHbK2s")],
    ),
    (
        "token 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",
        [("GITHUB_TOKEN", "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")],
    ),
    (
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        [("GITHUB_TOKEN", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")],
    ),
    ("ghp_ tokens are 40 characters long", []),
    ("glpat-hellOworld380_testin", [("GITLAB_TOKEN", "glpat-hellOworld380_testin")]),
    ("glpat_hellOworld380_testin", []),
    (
        "xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1",
        [("SLACK_TOKEN", "xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1")],
    ),
    ("xoxb-xxxxxxxxx-xxxxxxxxxx-xxxxxxxxxxxx", []),
    (
        "https://hooks.slack.com/services/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",
        [
            (
                "SLACK_WEBHOOK",
                "https://hooks.slack.com/services/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",
            )
        ],
    ),
    ("sk_live_ReTllpYQYfIZu2Jnf2lAPFjD", [("STRIPE_KEY", "sk_live_ReTllpYQYfIZu2Jnf2lAPFjD")]),
    ("pk_live_j5krY8XTgIcDaHDb3YrsAfCl", []),  # publishable, not secret
    (
        "AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0",
        [("GOOGLE_API_KEY", "AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0")],
    ),
    (
        "OPENAI_API_KEY=sk-proj-Xi8tdMjHV6pmbBbwilTeT3BlbkFJ3UDnpdEwNNm6wVBpYM0o",
        [("OPENAI_API_KEY", "sk-proj-Xi8tdMjHV6pmbBbwilTeT3BlbkFJ3UDnpdEwNNm6wVBpYM0o")],
    ),
    ("sk-ant-api03-", []),
    (f"here: {_PEM}", [("PRIVATE_KEY", _PEM)]),
    ("-----BEGIN PRIVATE KEY-----\nanything\n-----END PRIVATE KEY-----", []),
    (f"Authorization: Bearer {_JWT}", [("JWT", _JWT)]),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", []),  # a header alone
    (
        "postgres://app:Zk8#qv2Lw9@db.internal:5432/app",
        [("URL_CREDENTIALS", "Zk8#qv2Lw9")],
    ),
    ("postgres://app:<password>@db:5432/app", []),
    ('api_key = "9fT2kQ7xLm4Rz8Wb3Nc6Vd1H"', [("GENERIC_SECRET", "9fT2kQ7xLm4Rz8Wb3Nc6Vd1H")]),
    ('"password": "Tr0ub4dor&3x"', [("GENERIC_SECRET", "Tr0ub4dor&3x")]),
    ('api_key = "<your-key>"', []),
    ("SECRET=${SECRET_FROM_VAULT}", []),
    ('api_key = "xxxxxxxxxxxxxxxxxxxx"', []),
    ("credentialsId: 'ff083f76-7804-4ef1-80e4-fe975bb9141b'", []),  # an id, not a secret
    ("The secret to good bread is patience.", []),
    # Twilio API keys and Discord bot tokens carry no key name in code.
    (
        'client = Client("SK2f0c3e51b7d94a6c8e1f0b9d7a6c5e4d", secret)',
        [("TWILIO_API_KEY", "SK2f0c3e51b7d94a6c8e1f0b9d7a6c5e4d")],
    ),
    ("SKU SK4421 ships in 3 days", []),
    (
        "bot.run('MTA0NTEyMzQ1Njc4OTAxMjM0NQ.GxYz12.abcDEF_ghiJKL-mnoPQRstuVWXyz0123456789')",
        [
            (
                "DISCORD_BOT_TOKEN",
                "MTA0NTEyMzQ1Njc4OTAxMjM0NQ.GxYz12.abcDEF_ghiJKL-mnoPQRstuVWXyz0123456789",
            )
        ],
    ),
    # The same shape whose first part is not a base64 numeric id.
    ("MTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw.GxYz12.abcDEF_ghiJKL-mnoPQRstuVWXyz0123456789", []),
    ("Nice.Things.areforthosewhowaitpatientlyforthem", []),
    # After an escaped newline in a JSON string or log line.
    (
        '"log": "loaded\\n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\\ndone"',
        [("GITHUB_TOKEN", "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")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
def test_secrets(text: str, expected: list[tuple[str, str]]) -> None:
    assert labels(build_check("secrets", {}), text) == expected


@pytest.mark.parametrize(("label", "value"), CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_secrets_every_vendor_format(label: str, value: str) -> None:
    """Each format is found whole inside prose, and a random body is not taken for an example."""
    check = build_check("secrets", {"generic": False})
    text = in_context(label, value)
    assert (label, value) in labels(check, f"use {text} here")
    [f] = [f for f in check.scan(text, IN) if f.label == label]
    assert not f.example


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "GITHUB_TOKEN=ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE1",
            "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE1",
        ),
        (
            "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-EXAMPLEexampleEXAMPLE1234",
            "xoxb-123456789012-1234567890123-EXAMPLEexampleEXAMPLE1234",
        ),
    ],
)
def test_secrets_documentation_examples_are_reported_as_examples(text: str, value: str) -> None:
    """Well-formed docs examples are found (mask/redact cover them) and marked ``example``
    (block/flag rules let them pass: the policy decides, see tests/test_guardrails_e2e.py)."""
    [f] = build_check("secrets", {}).scan(text, IN)
    assert text[f.start : f.end] == value and f.example


def test_secrets_unterminated_private_key_runs_to_the_end() -> None:
    text = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"
    [f] = build_check("secrets", {}).scan(text, ScanContext("output", final=False))
    assert (f.label, f.end) == ("PRIVATE_KEY", len(text))


def test_secrets_generic_can_be_switched_off() -> None:
    check = build_check("secrets", {"generic": False})
    assert check.scan('api_key = "9fT2kQ7xLm4Rz8Wb3Nc6Vd1H"', IN) == []


def test_secrets_assignment_windows_match_finditer() -> None:
    from gateway.checks import secrets

    texts = [
        "x api_key = 'A1b2C3d4E5f6G7h8' token: Zq8Lp0wXk2 password=Xy9!ab12",
        "mysecret_token=\n  Ab12Cd34Ef56Gh78Ij90 and secret.secret=abc",
        "token token token=abcdefgh12345678",
    ]
    for text in texts:
        assert [m.span() for m in secrets._assignments(text)] == [
            m.span() for m in secrets._ASSIGNMENT.finditer(text)
        ]
