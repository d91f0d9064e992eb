"""Graceful shutdown: SIGTERM during a stream stops new connections, lets the stream finish, settles
it and writes its record before the process exits."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fakes.openai_upstream import running_fake_openai
from tests.gateway_runner import GatewayProcess
from tests.helpers import CLIENT_KEY, base_config


@pytest.mark.timeout(90)
def test_sigterm_mid_stream_finishes_the_stream_and_records_it(tmp_path: Path) -> None:
    with running_fake_openai() as fake:
        fake.chunks, fake.chunk_delay_s = 8, 0.4  # about 3 s of stream
        cfg = base_config(fake.url, tmp_path)
        cfg["server"]["shutdown_grace_s"] = 20
        gw = GatewayProcess(cfg, tmp_path / "run")
        with gw:
            texts: list[str] = []
            lines: list[str] = []
            with httpx.stream(
                    "POST", gw.url + "/v1/chat/completions", timeout=30,
                    headers={"authorization": f"Bearer {CLIENT_KEY}"},
                    json={"model": "gpt-test", "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]}) as r:
                assert r.status_code == 200
                stream = r.iter_lines()
                for line in stream:
                    lines.append(line)
                    if line.startswith("data: {"):
                        break  # the first chunk is here: the stream is in flight
                os.killpg(gw.proc.pid, signal.SIGTERM)
                time.sleep(0.8)
                # Draining: the listening socket is closed, so new clients are turned away.
                with pytest.raises(httpx.TransportError):
                    httpx.get(gw.url + "/healthz", timeout=2)
                lines += list(stream)
            assert gw.proc.wait(30) in (0, -signal.SIGTERM)
        for line in lines:
            if line.startswith("data: {"):
                for choice in orjson.loads(line[6:])["choices"]:
                    texts.append(choice["delta"].get("content") or "")
        assert "".join(texts) == fake.reply
        assert [line for line in lines if line][-1] == "data: [DONE]"
        assert fake.completed_streams == 1

    with sqlite3.connect(tmp_path / "gw.db") as db:
        rows = db.execute("SELECT status, finish_reason, completion_tokens, cost_micros, stream "
                          "FROM requests").fetchall()
    assert len(rows) == 1
    status, finish, completion, cost, stream_flag = rows[0]
    assert (status, finish, bool(stream_flag)) == (200, "stop", True)
    assert completion > 0 and cost > 0  # settled with the upstream's usage


@pytest.mark.timeout(90)
def test_stream_outliving_the_grace_period_is_cut_but_still_settled_and_recorded(
        tmp_path: Path) -> None:
    with running_fake_openai() as fake:
        fake.chunks, fake.chunk_delay_s = 20, 0.4  # about 8 s of stream
        cfg = base_config(fake.url, tmp_path)
        cfg["server"]["shutdown_grace_s"] = 1
        gw = GatewayProcess(cfg, tmp_path / "run")
        with gw:
            started = time.monotonic()
            with httpx.stream(
                    "POST", gw.url + "/v1/chat/completions", timeout=30,
                    headers={"authorization": f"Bearer {CLIENT_KEY}"},
                    json={"model": "gpt-test", "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]}) as r:
                stream = r.iter_lines()
                for line in stream:
                    if line.startswith("data: {"):
                        break
                os.killpg(gw.proc.pid, signal.SIGTERM)
                with pytest.raises(httpx.TransportError):
                    list(stream)  # cut when the grace period ends
            assert gw.proc.wait(30) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 6  # the bound held

    with sqlite3.connect(tmp_path / "gw.db") as db:
        rows = db.execute("SELECT status, completion_tokens, cost_micros FROM requests").fetchall()
    assert len(rows) == 1
    status, completion, cost = rows[0]
    # What was served is billed; a stream the server cut is recorded as such (503), not as a 200.
    # (If uvicorn closed the socket first, the relay sees a disconnect: 499.)
    assert status in (499, 503) and completion > 0 and cost > 0
