"""Tests of ``gateway.admin``."""
