"""The OpenAI dialects (chat completions, legacy completions, embeddings) and the chat wire format.

``requests`` validates bodies and finds their texts, ``answers`` reads and withholds answers,
``events`` reads, guards and frames stream chunks; ``api`` puts them together as the dialects
``CHAT``, ``COMPLETIONS`` and ``EMBEDDINGS``.
"""
