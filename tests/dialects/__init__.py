"""Tests of ``gateway.dialects``."""
