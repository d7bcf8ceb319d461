"""Thin web-framework adapters for :class:`chathooks.receiver.WebhookReceiver`.

Import the one you use (``chathooks.receiver.adapters.starlette``, ``.flask``
or ``.django``); this package imports none of them, so no framework is needed
until you ask for its adapter.
"""
