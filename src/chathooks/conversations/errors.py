"""What can go wrong when a chat platform reports a conversation event.

Each error carries the HTTP status it maps to, a stable ``code`` and the
``field`` at fault, so the API answers ``{"error", "field", "message"}``
without knowing the rules, and the CLI can print the same message.
"""

from __future__ import annotations

from chathooks.errors import FieldError

__all__ = [
    "ConversationBusy",
    "ConversationClosed",
    "ConversationError",
    "ConversationExists",
    "ConversationFull",
    "ConversationNotFound",
]


class ConversationError(FieldError):
    """A conversation event that cannot be applied."""

    code: str = "conversation_error"
    field: str = "id"


class ConversationNotFound(ConversationError):
    status_code = 404
    code = "conversation_not_found"
    field = "conversation"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id!r} in this site")


class ConversationExists(ConversationError):
    status_code = 409
    code = "conversation_exists"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"a conversation with id {conversation_id!r} already exists in this site; "
            "ids are unique per site (omit 'id' to have one generated)"
        )


class ConversationClosed(ConversationError):
    """The conversation completed; its transcript was already posted."""

    status_code = 409
    code = "conversation_closed"
    field = "conversation"

    def __init__(self, conversation_id: str, reason: str | None) -> None:
        how = " after being idle" if reason == "idle" else ""
        super().__init__(
            f"conversation {conversation_id!r} is closed{how}; its transcript was posted and "
            "it takes no more changes. Start a new conversation instead",
        )


class ConversationBusy(ConversationError):
    """Other changes to the same conversation kept winning; the caller may simply retry."""

    status_code = 409
    code = "conversation_busy"
    field = "conversation"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"conversation {conversation_id!r} is being changed by many requests at once; "
            "retry the request"
        )


class ConversationFull(ConversationError):
    """A chat that already holds as many messages as one transcript may carry."""

    status_code = 409
    code = "conversation_full"
    field = "body"

    def __init__(self, conversation_id: str, limit: int) -> None:
        super().__init__(
            f"conversation {conversation_id!r} already has {limit} messages, the most one "
            "transcript carries; start a new conversation"
        )
