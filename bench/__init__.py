"""The delivery benchmark behind ``make bench`` (run ``python -m bench.delivery``).

Everything here talks to loopback only: a sink process receives the
webhooks, chathooks processes are started and stopped by the benchmark, and
PostgreSQL databases it creates are dropped again.
"""
