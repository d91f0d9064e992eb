"""Guardrail checks: each module detects one kind of content and reports spans; none acts on them.

The action (block / redact / mask / flag) is decided by the policy and applied in
``gateway.enforce``; see ``base.Check`` for the interface and ``registry`` for how checks are found.
"""
