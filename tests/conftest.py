"""Shared pytest set-up: fixtures live in their own modules, registered here as plugins."""

pytest_plugins = ["tests.services"]
