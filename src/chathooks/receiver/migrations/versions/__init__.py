"""The receiver's migration scripts, applied in order by ``chathooks receive``."""
