"""Olark's chat rules: chathooks keeps each conversation and decides what to POST, and when.

A chat platform reports events as they happen (a chat starts, a line is
written, an operator types ``!lead``, the chat ends, a visitor leaves an
offline message); :class:`ConversationService` applies the rules in
:mod:`~chathooks.conversations.rules` and queues the resulting deliveries in
the same transaction. No web framework here: the API routes and the worker's
idle check both call the service.
"""

from chathooks.conversations.errors import (
    ConversationBusy,
    ConversationClosed,
    ConversationError,
    ConversationExists,
    ConversationNotFound,
)
from chathooks.conversations.events import OutcomeSignal
from chathooks.conversations.idle import idle_check
from chathooks.conversations.service import ConversationService

__all__ = [
    "ConversationBusy",
    "ConversationClosed",
    "ConversationError",
    "ConversationExists",
    "ConversationNotFound",
    "ConversationService",
    "OutcomeSignal",
    "idle_check",
]
