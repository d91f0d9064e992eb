"""An OpenAI-compatible LLM gateway with exact budgets, PII guardrails and a review queue."""

__version__ = "0.1.0"
