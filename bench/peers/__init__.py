"""The usual Python alternatives, run against the same sink with the same bodies.

Each peer is configured the way its documentation recommends for I/O-bound
work and runs in processes of its own; the benchmark only starts them,
enqueues the bodies, and times the drain at the sink exactly as for chathooks.
"""
