"""Tests of ``gateway.providers``."""
