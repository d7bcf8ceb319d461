"""CLI commands, one module per area of chathooks."""
