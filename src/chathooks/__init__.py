"""chathooks: Olark-compatible chat transcript webhooks, sent durably and received safely."""

__version__ = "0.1.0"
