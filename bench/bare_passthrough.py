"""The floor: the least a Python proxy on the gateway's stack can do per request.

Starlette on uvicorn (uvloop + httptools) with one pooled aiohttp ClientSession: parse the JSON
body, forward it, pass the answer (or the stream) back. No auth, budgets, policies or logging.
Every benchmark run shows the gateway's figures as a fraction of this floor, so a regression in
the gateway is told apart from a slow machine.

    python bench/bare_passthrough.py --port 9200 --upstream http://127.0.0.1:9100/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def create_app(upstream: str) -> Starlette:
    """One session for the process lifetime: connection reuse is what makes the floor a floor."""
    state: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=60)
        async with aiohttp.ClientSession(
            connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
        ) as session:
            state["session"] = session
            yield

    async def forward(request: Request) -> Response:
        body = orjson.loads(await request.body())
        url = upstream + request.url.path.removeprefix("/v1")
        headers = {"content-type": "application/json", "authorization": "Bearer x"}
        session = state["session"]
        resp = await session.post(url, data=orjson.dumps(body), headers=headers)
        if not body.get("stream"):
            async with resp:
                data = await resp.read()
            return Response(data, resp.status, media_type="application/json")

        async def relay() -> AsyncIterator[bytes]:
            async with resp:
                async for chunk in resp.content.iter_any():
                    yield chunk

        return StreamingResponse(relay(), resp.status, media_type="text/event-stream")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", forward, methods=["POST"]),
            Route("/v1/embeddings", forward, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--upstream", required=True, help="base URL ending in /v1")
    a = ap.parse_args()
    uvicorn.run(create_app(a.upstream.rstrip("/")), host=a.host, port=a.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
