"""Limits every HTTP request meets before chathooks spends memory or time on it.

* :mod:`.head` - the request line and headers, capped while they arrive (431);
* :mod:`.body` - the body, capped while it is read, and refused before it is
  read when the request's key is not valid; NULs in the path or query (4xx).

Both ``chathooks serve`` and ``chathooks receive`` run behind them. The
modules are imported one by one: only :mod:`.head` needs uvicorn.
"""
