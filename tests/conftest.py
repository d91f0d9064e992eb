"""What every test module may use: the real services (``tests/services.py``, registered as a
plugin), a fake OpenAI-compatible upstream and a gateway in front of it.

A module that needs a different gateway (another config, a pre-filled review queue) defines its
own ``gw``; one that needs a different upstream, its own ``fake``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, running_fake_openai
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import base_config

pytest_plugins = ["tests.services"]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible upstream on a loopback port, for one test."""
    with running_fake_openai() as f:
        yield f


@pytest.fixture
def gw(fake: FakeOpenAI, tmp_path: Path) -> Iterator[RunningGateway]:
    """A gateway with the typical test config (``helpers.base_config``) in front of ``fake``."""
    with run_gateway(base_config(fake.url, tmp_path)) as g:
        yield g
