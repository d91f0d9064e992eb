"""Prompt-injection detection: phrase heuristics, attack shapes, hidden text, and an optional
small model, in one package.

- ``signals``: the phrase-signal type and the single pass over a text's words that finds them;
- ``phrases`` / ``weak_phrases``: what attackers say (overrides, personas, extraction, refusal
  suppression) and the weaker cues that count only together;
- ``decoders``: base64/hex/binary, leetspeak, letter spacing, Morse, pig latin, letter shifts;
- ``structure``: fake turns, repeats, format-break markers, box-drawn notices, shouting;
- ``model``: the optional n-gram logistic regression (weights in ``ngram_lr.npz``);
- ``check``: the check itself, its parameters and how the evidence is combined.
"""

from gateway.checks.prompt_injection.check import PromptInjectionCheck, PromptInjectionParams

__all__ = ["PromptInjectionCheck", "PromptInjectionParams"]
