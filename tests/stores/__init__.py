"""Tests of ``gateway.stores``."""
