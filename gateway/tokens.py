"""Token counting with tiktoken, offline (what is a text and what is a prompt is the dialect's).

tiktoken downloads its encodings on first use; litellm's wheel ships ``cl100k_base`` and
``o200k_base`` under ``litellm_core_utils/tokenizers``, so we point ``TIKTOKEN_CACHE_DIR`` there
(found without importing litellm, which is slow and not needed on the fast path).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import tiktoken


def _point_tiktoken_at_bundled_files() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils/tokenizers"
    if bundled.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)


_point_tiktoken_at_bundled_files()

_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


@lru_cache(maxsize=4)
def _encoding(name: str) -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> tiktoken.Encoding:
    """The encoding of an OpenAI model family; cl100k_base approximates every other model."""
    base = model.rsplit("/", 1)[-1]
    return _encoding("o200k_base" if base.startswith(_O200K_PREFIXES) else "cl100k_base")


def count_text(text: str, model: str) -> int:
    """Tokens of one text (not memoized: stream output and one-off inputs never repeat)."""
    if not text:
        return 0
    return len(encoding_for(model).encode_ordinary(text))


#: Texts up to this size have their counts memoized.
_MEMO_MAX_CHARS = 65536


def count_chat(texts: Iterable[str], messages: int, model: str) -> int:
    """OpenAI's chat accounting: the texts of ``messages`` messages, about 3 tokens of framing
    per message plus 3 to prime the reply. Which texts a message has is its dialect's business."""
    name = encoding_for(model).name
    n = 3
    for text in texts:
        if text:
            n += _count(name, text)
    return n + 3 * messages


def _count(encoding: str, text: str) -> int:
    if len(text) <= _MEMO_MAX_CHARS:
        return _count_memo(encoding, text)
    return len(_encoding(encoding).encode_ordinary(text))


@lru_cache(maxsize=8192)
def _count_memo(encoding: str, text: str) -> int:
    """Chat clients resend the whole conversation (system prompt, earlier turns) on every
    request, so most message texts have been counted before: hashing a text is ~50x cheaper
    than encoding it. Bounded, and a pure function of its arguments."""
    return len(_encoding(encoding).encode_ordinary(text))


def warm_up(models: Iterable[str] = ()) -> None:
    """Load the encodings of these models at start-up, so the first request does not pay for it.

    Only those: each encoding costs tens of MB of resident memory per worker.
    """
    for enc in {encoding_for(m).name for m in models} or {"cl100k_base"}:
        _encoding(enc).encode_ordinary("warm")
