"""Generated personal data with gold character spans, in the layouts prompts carry (Faker, fixed
seeds): sentences, newline-separated records, escaped newlines inside JSON strings, Markdown
tables and JSON objects; with numbers that are not personal data beside them (street addresses
with apartment numbers and ZIP+4 codes, timestamps with fractional seconds, order ids, amounts).

``dev`` (seed 19, en_US and en_GB, six layouts: sentence, lines, escaped newlines, CRLF, Markdown
table, JSON) is what the recognizers were tuned on. ``holdout`` (seed 2024, en_CA, en_AU, de_DE,
fr_FR, en_US) uses six *other* layouts written apart from them and never tuned on: CSV, YAML, a
key=value log line, an e-mail signature, an HTML table, a chat message with a bullet list.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from faker import Faker

Span = tuple[str, int, int]


@dataclass
class Doc:
    """A text under construction: ``add`` appends a value and records its span."""

    parts: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    size: int = 0

    def add(self, text: str, label: str = "") -> None:
        if label:
            self.spans.append((label, self.size, self.size + len(text)))
        self.parts.append(text)
        self.size += len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    spans: list[Span]
    layout: str


def _values(fake: Faker, rng: random.Random) -> list[tuple[str, str, str]]:
    """(field name, value, label) of one person's record, including non-PII numbers."""
    when = fake.date_time_this_decade()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randrange(10**6):06d}Z"
    if rng.random() < 0.5:
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") + f",{rng.randrange(10**9):09d}"
    street = fake.street_address()
    if rng.random() < 0.5:
        street += f" Apt. {rng.randrange(100, 999)}"
    postcode = fake.postcode()
    return [
        ("name", fake.name(), "PERSON"),
        ("email", fake.email(), "EMAIL_ADDRESS"),
        ("phone", fake.phone_number(), "PHONE_NUMBER"),
        ("address", f"{street}, {fake.city()} {postcode}", "STREET_ADDRESS"),
        ("card", fake.credit_card_number(), "CREDIT_CARD"),
        ("iban", fake.iban(), "IBAN_CODE"),
        ("ip", fake.ipv4_public() if rng.random() < 0.7 else fake.ipv6(), "IP_ADDRESS"),
        ("ssn", fake.ssn() if fake.locales[0] == "en_US" else "", "US_SSN"),
        ("created", stamp, ""),
        ("order", f"{rng.randrange(10**7, 10**8)}-{rng.randrange(10**3, 10**4)}", ""),
        ("amount", f"${rng.randrange(10, 99999):,}.{rng.randrange(100):02d}", ""),
    ]


def _sentence(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    v = {k: (val, lab) for k, val, lab in rec}
    doc.add("Please update the customer ")
    doc.add(*v["name"])
    doc.add(" (")
    doc.add(*v["email"])
    doc.add(", phone ")
    doc.add(*v["phone"])
    doc.add(") who moved to ")
    doc.add(*v["address"])
    doc.add(". Order ")
    doc.add(v["order"][0])
    doc.add(f" of {v['amount'][0]} was paid with card ")
    doc.add(*v["card"])
    doc.add(" at ")
    doc.add(v["created"][0])
    doc.add(" from ")
    doc.add(*v["ip"])
    doc.add(".")


def _lines(doc: Doc, rec: list[tuple[str, str, str]], newline: str) -> None:
    for i, (k, val, lab) in enumerate(r for r in rec if r[1]):
        if i:
            doc.add(newline)
        if k in ("phone", "address") and i % 2:
            doc.add(f"{k.title()}:" + newline)  # the value on a line of its own
        else:
            doc.add(f"{k.title()}: ")
        doc.add(val, lab)


def _table(doc: Doc, recs: list[list[tuple[str, str, str]]]) -> None:
    keys = [k for k, val, _ in recs[0] if val]
    doc.add("| " + " | ".join(keys) + " |\n")
    doc.add("|" + "---|" * len(keys) + "\n")
    for rec in recs:
        doc.add("|")
        for _, val, lab in (r for r in rec if r[1]):
            doc.add(" ")
            doc.add(val, lab)
            doc.add(" |")
        doc.add("\n")


def _json(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    doc.add("{")
    first = True
    for k, val, lab in rec:
        if not val:
            continue
        doc.add(("" if first else ", ") + f'"{k}": ')
        first = False
        encoded = json.dumps(val)
        doc.add('"')
        doc.add(encoded[1:-1], lab)
        doc.add('"')
    doc.add("}")


def _csv(doc: Doc, recs: list[list[tuple[str, str, str]]]) -> None:
    keys = [k for k, val, _ in recs[0] if val]
    doc.add(",".join(keys) + "\n")
    for rec in recs:
        for i, (_, val, lab) in enumerate(r for r in rec if r[1]):
            quoted = "," in val
            doc.add(("," if i else "") + ('"' if quoted else ""))
            doc.add(val, lab)
            doc.add('"' if quoted else "")
        doc.add("\n")


def _yaml(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    doc.add("customer:\n")
    for k, val, lab in rec:
        if val:
            doc.add(f"  {k}: ")
            quoted = k in ("card", "order", "created") or ":" in val
            doc.add('"' if quoted else "")
            doc.add(val, lab)
            doc.add('"\n' if quoted else "\n")


def _kv_log(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    v = {k: (val, lab) for k, val, lab in rec}
    doc.add(v["created"][0] + " INFO checkout.completed user=")
    doc.add(*v["email"])
    doc.add(" client_ip=")
    doc.add(*v["ip"])
    doc.add(" order=" + v["order"][0] + " total=" + v["amount"][0] + " pan=")
    doc.add(*v["card"])
    doc.add(' contact="')
    doc.add(*v["phone"])
    doc.add('"')


def _signature(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    v = {k: (val, lab) for k, val, lab in rec}
    doc.add("Thanks for your help with order " + v["order"][0] + "!\n\nBest regards,\n")
    doc.add(*v["name"])
    doc.add("\nAccounts team\nt: ")
    doc.add(*v["phone"])
    doc.add("\ne: ")
    doc.add(*v["email"])
    doc.add("\nBank: ")
    doc.add(*v["iban"])


def _html(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    doc.add("<table>\n")
    for k, val, lab in rec:
        if val:
            doc.add(f"  <tr><th>{k}</th><td>")
            doc.add(val, lab)
            doc.add("</td></tr>\n")
    doc.add("</table>")


def _chat(doc: Doc, rec: list[tuple[str, str, str]]) -> None:
    v = {k: (val, lab) for k, val, lab in rec}
    doc.add("hi! can you write a polite reminder to this client? details:\n- ")
    doc.add(*v["name"])
    doc.add("\n- reach them at ")
    doc.add(*v["email"])
    doc.add(" or ")
    doc.add(*v["phone"])
    doc.add("\n- invoice " + v["order"][0] + " for " + v["amount"][0] + ", due since "
            + v["created"][0][:10] + "\n- they paid last time from ")
    doc.add(*v["iban"])
    if v["ssn"][0]:
        doc.add("\n- tax id on file: ")
        doc.add(*v["ssn"])


LAYOUTS = ("sentence", "lines", "escaped", "crlf", "table", "json")
HOLDOUT_LAYOUTS = ("csv", "yaml", "kv_log", "signature", "html", "chat")


def _holdout_layout(layout: str, doc: Doc, rec: list[tuple[str, str, str]],
                    another: Callable[[], list[tuple[str, str, str]]]) -> None:
    if layout == "csv":
        _csv(doc, [rec, another()])
    elif layout == "yaml":
        _yaml(doc, rec)
    elif layout == "kv_log":
        _kv_log(doc, rec)
    elif layout == "signature":
        _signature(doc, rec)
    elif layout == "html":
        _html(doc, rec)
    else:
        _chat(doc, rec)


def generate(split: str = "dev", n: int = 600) -> list[Sample]:
    seed, locales = {
        "dev": (19, ["en_US", "en_GB"]),
        "holdout": (2024, ["en_CA", "en_AU", "de_DE", "fr_FR", "en_US"]),
    }[split]
    rng = random.Random(seed)
    fakers = []
    for i, loc in enumerate(locales):
        f = Faker(loc)
        f.seed_instance(seed + i)
        fakers.append(f)
    out: list[Sample] = []
    for i in range(n):
        fake = fakers[i % len(fakers)]
        layouts = LAYOUTS if split == "dev" else HOLDOUT_LAYOUTS
        layout = layouts[i % len(layouts)]
        doc = Doc()
        rec = _values(fake, rng)
        if layout in HOLDOUT_LAYOUTS:
            _holdout_layout(layout, doc, rec, lambda f=fake: _values(f, rng))  # type: ignore[misc]
        elif layout == "sentence":
            _sentence(doc, rec)
        elif layout == "lines":
            _lines(doc, rec, "\n")
        elif layout == "escaped":
            doc.add('{"note": "')
            _lines(doc, rec, "\\n")
            doc.add('"}')
        elif layout == "crlf":
            _lines(doc, rec, "\r\n")
        elif layout == "table":
            _table(doc, [rec, _values(fake, rng)])
        else:
            _json(doc, rec)
        out.append(Sample(doc.text, doc.spans, layout))
    return out


if __name__ == "__main__":
    for s in generate()[:6]:
        print(s.layout, repr(s.text)[:400])
