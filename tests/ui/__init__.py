"""Tests of ``gateway.ui``."""
