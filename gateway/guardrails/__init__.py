"""Policies on requests and answers: which checks run, and what their findings do.

``policy`` loads a team's rules, ``runner`` scans texts off the event loop and applies a policy
to a request and to its answer, ``enforce`` turns findings into block / redact / mask / flag (the
only place that does), ``stream_guard`` does the same on a stream without buffering it. The
checks themselves are in ``gateway.checks``; where texts live in a body is the dialect's business.
"""
