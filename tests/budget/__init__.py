"""Tests of ``gateway.budget``."""
