"""Tests of ``gateway.ops``."""
