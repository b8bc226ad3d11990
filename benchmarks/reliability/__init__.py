"""rxllm's reliability harness (issue 17): faults, leaks, fuzz, concurrency, secrets.

    python -m benchmarks.reliability           # full size, writes docs/reliability.md
    python -m benchmarks.reliability --small   # the size CI runs (tests/test_reliability.py)

Every section drives the real SDKs through rxllm against the loopback server
(`rxllm.testing.Server`) and returns a `Section`: its table for the report, and the list of
what was wrong (a wrong error class, a partial that is not exactly what was sent, a leaked
thread, a hang, an untyped exception, a key in a message). The CI test fails on any of them.
"""
