"""Inbound APIs: one package per dialect, behind the seam of ``base``, and the table of paths.

Adding an inbound API is one package implementing ``base.Dialect`` (and, if its provider speaks
it natively, ``base.Wire``) and one entry in ``INBOUND``. The app serves every path with and
without the ``/v1`` prefix.
"""

from __future__ import annotations

from gateway.dialects.base import Dialect
from gateway.dialects.chat.api import CHAT, COMPLETIONS, EMBEDDINGS

#: path (after ``/v1``) -> the dialect that serves it.
INBOUND: dict[str, Dialect] = {
    "/chat/completions": CHAT,
    "/completions": COMPLETIONS,
    "/embeddings": EMBEDDINGS,
}
