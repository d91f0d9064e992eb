"""Tests of ``gateway.guardrails``."""
