"""Tests of ``gateway.cli``."""
