"""Generated credentials of 50 formats (47 providers), in the places people paste them, with
near-misses; fixed seed, so every run scores the same strings.

Each format follows the provider's documented shape (prefix, alphabet, length, checksum where one
exists). Positives are random bodies in nine contexts (bare, prose, env file, JSON, YAML, code
without a key name, URL query, after a newline, after an escaped newline). Near-misses are the
shapes people confuse with them: one character short, a wrong prefix or alphabet, the prefix
alone in prose, hashes, UUIDs, base64 blobs, ids. Documentation examples (``AKIAIOSFODNN7EXAMPLE``
and friends) are a third class: well-formed, so ``mask``/``redact`` must cover them, but a block
rule may let them pass.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

AL = string.ascii_letters + string.digits
UP = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper()


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    label: str  # expected finding label; "" for a near-miss
    value: str  # the credential inside ``text`` ("" for a near-miss)
    provider: str
    kind: str  # positive | near_miss | example


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _discord(rng: random.Random) -> str:
    uid = str(rng.randrange(10**17, 10**19)).encode()
    head = base64.b64encode(uid).decode().rstrip("=")
    return f"{head}.{_s(rng, AL + '-_', 6)}.{_s(rng, AL + '-_', 38)}"


def _jwt(rng: random.Random) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    iat = rng.randrange(1_600_000_000, 1_800_000_000)
    body = {"sub": str(rng.randrange(10**9)), "iat": iat, "role": "user"}
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(body)}.{_s(rng, AL + '-_', 43)}"


def _pem(rng: random.Random) -> str:
    body = base64.b64encode(rng.randbytes(600)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----"


def _azure_storage(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(64)).decode()


# label -> (provider, generator). Bodies are random in the documented alphabet and length.
FORMATS: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "AWS_ACCESS_KEY": ("aws", lambda r: "AKIA" + _s(r, B32, 16)),
    "AWS_SECRET_KEY": ("aws", lambda r: _s(r, AL + "/+", 40)),
    "GITHUB_TOKEN": ("github", lambda r: r.choice(["ghp_", "gho_", "ghs_"]) + _s(r, AL, 36)),
    "GITHUB_FINE_GRAINED": ("github", lambda r: f"github_pat_{_s(r, AL, 22)}_{_s(r, AL, 59)}"),
    "GITLAB_TOKEN": ("gitlab", lambda r: "glpat-" + _s(r, AL + "_-", 20)),
    "SLACK_TOKEN": ("slack", lambda r: f"xoxb-{_s(r, string.digits, 12)}-"
                    f"{_s(r, string.digits, 13)}-{_s(r, AL, 24)}"),
    "SLACK_WEBHOOK": ("slack", lambda r: f"https://hooks.slack.com/services/T{_s(r, UP, 8)}/"
                      f"B{_s(r, UP, 10)}/{_s(r, AL, 24)}"),
    "STRIPE_KEY": ("stripe", lambda r: "sk_live_" + _s(r, AL, 24)),
    "GOOGLE_API_KEY": ("google", lambda r: "AIza" + _s(r, AL + "_-", 35)),
    "ANTHROPIC_API_KEY": ("anthropic", lambda r: f"sk-ant-api03-{_s(r, AL + '_-', 93)}AA"),
    "OPENAI_API_KEY": ("openai", lambda r: f"sk-proj-{_s(r, AL, 20)}T3BlbkFJ{_s(r, AL, 20)}"),
    "NPM_TOKEN": ("npm", lambda r: "npm_" + _s(r, AL, 36)),
    "PYPI_TOKEN": ("pypi", lambda r: "pypi-AgEIcHlwaS5vcmc" + _s(r, AL + "_-", 60)),
    "SENDGRID_KEY": ("sendgrid", lambda r: f"SG.{_s(r, AL + '_-', 22)}.{_s(r, AL + '_-', 43)}"),
    "TELEGRAM_BOT_TOKEN": ("telegram", lambda r: f"{r.randrange(10**8, 10**10)}:AA"
                           f"{_s(r, AL + '_-', 33)}"),
    "MAILCHIMP_KEY": ("mailchimp", lambda r: f"{_s(r, HEX, 32)}-us{r.randrange(1, 21)}"),
    "MAILGUN_KEY": ("mailgun", lambda r: "key-" + _s(r, HEX, 32)),
    "HASHICORP_VAULT_TOKEN": ("vault", lambda r: "hvs." + _s(r, AL + "_-", 92)),
    "HUGGINGFACE_TOKEN": ("huggingface", lambda r: "hf_" + _s(r, string.ascii_letters, 34)),
    "NOTION_TOKEN": ("notion", lambda r: f"ntn_{_s(r, string.digits, 11)}{_s(r, AL, 35)}"),
    "SOURCEGRAPH_TOKEN": ("sourcegraph", lambda r: f"sgp_{_s(r, HEX, 16)}_{_s(r, HEX, 40)}"),
    "AZURE_STORAGE_KEY": ("azure", _azure_storage),
    "AZURE_CLIENT_SECRET": ("azure", lambda r: f"{_s(r, AL, 3)}{r.randrange(10)}Q~"
                            f"{_s(r, AL + '_~.-', 34)}"),
    "TWILIO_API_KEY": ("twilio", lambda r: "SK" + _s(r, HEX, 32)),
    "DISCORD_BOT_TOKEN": ("discord", _discord),
    "DISCORD_WEBHOOK": ("discord", lambda r: f"https://discord.com/api/webhooks/"
                        f"{r.randrange(10**17, 10**19)}/{_s(r, AL + '_-', 68)}"),
    "SHOPIFY_TOKEN": ("shopify", lambda r: "shpat_" + _s(r, HEX, 32)),
    "DIGITALOCEAN_TOKEN": ("digitalocean", lambda r: "dop_v1_" + _s(r, HEX, 64)),
    "DATABRICKS_TOKEN": ("databricks", lambda r: "dapi" + _s(r, HEX, 32)),
    "DOPPLER_TOKEN": ("doppler", lambda r: "dp.pt." + _s(r, AL, 43)),
    "LINEAR_API_KEY": ("linear", lambda r: "lin_api_" + _s(r, AL, 40)),
    "POSTMAN_API_KEY": ("postman", lambda r: f"PMAK-{_s(r, HEX, 24)}-{_s(r, HEX, 34)}"),
    "PULUMI_TOKEN": ("pulumi", lambda r: "pul-" + _s(r, HEX, 40)),
    "GRAFANA_TOKEN": ("grafana", lambda r: f"glsa_{_s(r, AL, 32)}_{_s(r, HEX, 8)}"),
    "NEW_RELIC_KEY": ("newrelic", lambda r: "NRAK-" + _s(r, UP, 27)),
    "SQUARE_TOKEN": ("square", lambda r: "EAAA" + _s(r, AL + "_-", 60)),
    "ATLASSIAN_TOKEN": ("atlassian", lambda r: "ATATT3xFfGF0" + _s(r, AL + "_-", 180) + "=6E1C"
                        + _s(r, HEX, 4)),
    "DROPBOX_TOKEN": ("dropbox", lambda r: "sl." + _s(r, AL + "_-", 138)),
    "HEROKU_KEY": ("heroku", lambda r: "HRKU-AA" + _s(r, AL + "_-", 58)),
    "ALIBABA_ACCESS_KEY": ("alibaba", lambda r: "LTAI" + _s(r, AL, 20)),
    "AGE_SECRET_KEY": ("age", lambda r: "AGE-SECRET-KEY-1" + _s(r, BECH, 58)),
    "CLOJARS_TOKEN": ("clojars", lambda r: "CLOJARS_" + _s(r, string.ascii_lowercase + "0123456789",
                                                           60)),
    "REPLICATE_TOKEN": ("replicate", lambda r: "r8_" + _s(r, AL, 37)),
    "GROQ_API_KEY": ("groq", lambda r: "gsk_" + _s(r, AL, 52)),
    "PERPLEXITY_API_KEY": ("perplexity", lambda r: "pplx-" + _s(r, AL, 48)),
    "TAILSCALE_KEY": ("tailscale", lambda r: f"tskey-auth-{_s(r, AL, 17)}-{_s(r, AL, 33)}"),
    "FLYIO_TOKEN": ("flyio", lambda r: "fo1_" + _s(r, AL + "_-", 43)),
    "FIGMA_TOKEN": ("figma", lambda r: "figd_" + _s(r, AL + "_-", 40)),
    "PRIVATE_KEY": ("pem", _pem),
    "JWT": ("jwt", _jwt),
}  # fmt: skip

# Findings that stand for another label of the same credential (the label the check reports).
REPORTED_AS = {"GITHUB_FINE_GRAINED": "GITHUB_TOKEN"}

# Formats that need a key name beside them to be told from random text (no prefix of their own).
NEEDS_NAME = {"AWS_SECRET_KEY": "aws_secret_access_key", "AZURE_STORAGE_KEY": "AccountKey"}

# Formats whose documented length is a range: one character less is still well-formed.
VARIABLE_LENGTH = frozenset({
    "PRIVATE_KEY", "JWT", "SLACK_WEBHOOK", "DISCORD_WEBHOOK", "AWS_SECRET_KEY",
    "AZURE_STORAGE_KEY", "AZURE_CLIENT_SECRET", "TELEGRAM_BOT_TOKEN", "MAILCHIMP_KEY",
    "DISCORD_BOT_TOKEN", "ATLASSIAN_TOKEN", "DROPBOX_TOKEN", "HASHICORP_VAULT_TOKEN",
    "OPENAI_API_KEY", "PYPI_TOKEN", "SQUARE_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "STRIPE_KEY",
    "TAILSCALE_KEY", "GRAFANA_TOKEN",
})  # fmt: skip

CONTEXTS: tuple[tuple[str, str], ...] = (
    ("bare", "{v}"),
    ("prose", "Here is the token you asked for: {v} - please rotate it after the demo."),
    ("env", "export {NAME}={v}\nexport DEBUG=1"),
    ("json", '{{"service": "billing", "{name}": "{v}", "retries": 3}}'),
    ("yaml", "service:\n  name: billing\n  {name}: '{v}'\n"),
    ("code", 'client = Client("{v}", timeout=30)\nclient.ping()'),
    ("url", "curl 'https://api.example.net/v1/items?limit=10&key={v}'"),
    ("newline", "Line one of the log\n{v}\nline three"),
    ("escaped", '"msg": "config loaded\\n{v}\\nstarting workers"'),
)

# Held-out contexts, written apart from ``CONTEXTS`` and never tuned on.
HOLDOUT_CONTEXTS: tuple[tuple[str, str], ...] = (
    ("markdown", "My config is below, why does it 401?\n```\n{NAME}={v}\nREGION=eu-west-1\n"
                 "```"),
    ("docker", "docker run --rm -e {NAME}={v} -p 8080:8080 acme/api:1.4"),
    ("toml", '[auth]\n{name} = "{v}"\ntimeout = 30\n'),
    ("header", "GET /v2/reports HTTP/1.1\nHost: api.acme.io\nAuthorization: Bearer {v}\n"),
    ("log", "2024-05-01 12:00:03,118 DEBUG http.client using credential {v} for upstream"),
    ("xml", "<settings><service>billing</service><apiKey>{v}</apiKey></settings>"),
    ("csv", "service,owner,secret\nbilling,ops,{v}\nsearch,web,-"),
    ("chat", "hey, can you check why this fails? my key is {v} thanks!!"),
    ("python_kw", "resp = requests.get(url, auth=({name!r}, '{v}'))"),
)
# Held-out near-misses: shapes beside credentials in the held-out contexts.
HOLDOUT_NEAR_MISSES = (
    "docker pull acme/api@sha256:9b2f1c4e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
    '"integrity": "sha512-Q2Fyb2wgd2FzIGhlcmUgYW5kIHRoaXMgaXMgbm90IGEga2V5IGF0IGFsbCBqdXN0IGEga'
    'GFzaA=="',
    "Authorization: Bearer <token>",
    "2024-05-01 12:00:03,118 DEBUG trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7",
    "<apiKey>${API_KEY}</apiKey>",
    "service,owner,secret\nbilling,ops,REDACTED\nsearch,web,-",
    "the build id is ci-2024-05-01-8841 and the commit is 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "export AWS_REGION=eu-west-1 AWS_PROFILE=staging",
    "aws_access_key_id = AKIA... (ask ops for the rest)",
    "Use a fine-grained token (github_pat_...) with repo scope only.",
    "My Stripe publishable key goes in the frontend, the secret one never does.",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@laptop is my public key",
    "sk-... is how OpenAI keys begin; paste yours in the settings page, not here",
    "postgres://app@db.internal:5432/app (password comes from the vault)",
    "Order #AKIA-2291 ships tomorrow; tracking 1Z999AA10123456784.",
    "UUID 123e4567-e89b-12d3-a456-426614174000 identifies the tenant",
)

# Documentation examples: well-formed, and published by the vendors themselves.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("GITHUB_TOKEN", "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE1"),
    ("SLACK_TOKEN", "xoxb-123456789012-1234567890123-EXAMPLEexampleEXAMPLE1234"),
    ("STRIPE_KEY", "sk_test_EXAMPLE4eC39HqLyjWDarjtT1zdp7dc"),
    ("GITLAB_TOKEN", "glpat-EXAMPLEexampleEXAMPLE"),
    ("NPM_TOKEN", "npm_EXAMPLEexampleEXAMPLEexampleEXAMPLE1"),
    ("GOOGLE_API_KEY", "AIzaSyEXAMPLE-exampleEXAMPLE_example123"),
    ("OPENAI_API_KEY", "sk-proj-EXAMPLEexampleEXAMPLET3BlbkFJexampleEXAMPLEexample"),
    ("TWILIO_API_KEY", "SK" + "0123456789abcdef" * 2),
    ("HUGGINGFACE_TOKEN", "hf_" + "abcdefghij" * 3 + "abcd"),
)


def _near_misses(rng: random.Random) -> list[Case]:
    cut = lambda v: v[:-1]  # noqa: E731
    out = []
    for label, (provider, gen) in FORMATS.items():
        if label in VARIABLE_LENGTH:
            continue  # a shorter body is still valid
        v = gen(rng)
        out.append(Case(f"the value was {cut(v)} before", "", "", provider, "near_miss"))
    prose = [
        "GitHub tokens start with ghp_ and are 40 characters long.",
        "Use an AKIA access key only for the CI user.",
        "Set SLACK_BOT_TOKEN to your xoxb- token from the app page.",
        "Stripe secret keys look like sk_live_... and must stay on the server.",
        "The sk-learn package and scikit-learn are the same project.",
        "npm_config_cache is where npm keeps downloads.",
        "See hf_hub_download for caching; HF_TOKEN is read from the environment.",
        "The task id is SK-1042 and the ticket is PROJ-881.",
        "Figure out how dapi and dop work in the docs.",
        "git checkout 3f786850e387550fdab836ed7e6dc881de23001b",
        f"sha256: {hashlib.sha256(b'x').hexdigest()}",
        f"md5 {hashlib.md5(b'y').hexdigest()}  file.tar.gz",
        f"request id {uuid.UUID(int=rng.getrandbits(128))}",
        "password: ********",
        "API_KEY=${API_KEY}",
        'api_key = "<your-api-key>"',
        "token = os.environ['GITHUB_TOKEN']",
        "The image is data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlE"
        "QVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        "Call 1-800-555-0199 and quote order 4417-2231-0098.",
        "The pull request is github.com/acme/repo/pull/12345.",
        "SKU SK4421 ships in 3 days; SKU SK99 is out of stock.",
        "Meeting notes: M. Davies, N. Obi and O. Chen joined at 10.30.",
        "MTIzNDU2Nzg5MDEyMzQ1Njc4.not-a.token",
        "version 2.31.0-rc.1 of the pulumi CLI (pul-cli)",
        "lin_api is the Linear SDK's module name",
        "dp.pt.example is not a real Doppler token",
        "Use key-value stores for caching",
        "The Grafana glsa_ prefix marks service account tokens",
        "sl.example.com is our Sri Lanka mirror",
    ]
    out += [Case(t, "", "", "prose", "near_miss") for t in prose]
    return out


def cases(seed: int = 19, per_context: int = 1, holdout: bool = False) -> list[Case]:
    """Every positive in every context (``per_context`` fresh bodies each), the near-misses and the
    documentation examples; ``holdout``: the held-out contexts and near-misses instead."""
    rng = random.Random(seed)
    out: list[Case] = []
    for label, (provider, gen) in FORMATS.items():
        reported = REPORTED_AS.get(label, label)
        name = NEEDS_NAME.get(label, "api_token")
        for ctx, template in HOLDOUT_CONTEXTS if holdout else CONTEXTS:
            for _ in range(per_context):
                v = gen(rng)
                if label in NEEDS_NAME:
                    text = f'{name}="{v}"' if ctx != "json" else f'{{"{name}": "{v}"}}'
                    if label == "AZURE_STORAGE_KEY":
                        text = f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={v};"
                elif label == "PRIVATE_KEY" and ctx in ("json", "escaped", "url", "code", "docker",
                                                        "header", "log", "xml", "csv", "python_kw",
                                                        "toml"):
                    continue  # a PEM block is multi-line; these contexts would escape it
                else:
                    text = template.format(v=v, name=name, NAME=name.upper())
                out.append(Case(text, reported, v, provider, "positive"))
    if holdout:
        out += [Case(t, "", "", "prose", "near_miss") for t in HOLDOUT_NEAR_MISSES]
    else:
        out += _near_misses(rng)
    for label, v in EXAMPLES:
        lead = "aws_secret_access_key = " if label == "AWS_SECRET_KEY" else "From the docs: "
        out.append(Case(lead + v, label, v, "docs", "example"))
    return out


if __name__ == "__main__":
    cs = cases()
    print(len(cs), "cases;", len({c.provider for c in cs if c.kind == "positive"}), "providers;",
          len({c.label for c in cs if c.kind == "positive"}), "formats")
