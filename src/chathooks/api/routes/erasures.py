"""``POST /api/v1/sites/{site}/erasures``: erase one conversation, or one visitor's data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from chathooks.api.auth import SiteId, authenticate
from chathooks.api.errors import ErrorBody
from chathooks.api.state import ServicesDep
from chathooks.erasure import erase
from chathooks.repository.sites import KeyOwner

router = APIRouter(prefix="/api/v1/sites/{site}", tags=["erasures"])


class ErasureRequest(BaseModel):
    """Exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        default=None, max_length=200, description="Erase this conversation."
    )
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Erase every conversation, offline message and delivery of this visitor.",
    )


class ErasureDone(BaseModel):
    """What was removed, by kind; the erasure itself is recorded (without its subject)."""

    subject: str
    conversations: int
    conversation_posts: int
    deliveries: int
    deliveries_cancelled: int
    payloads: int
    attempts: int
    idempotency_keys: int


@router.post(
    "/erasures",
    response_model=ErasureDone,
    responses={422: {"model": ErrorBody}},
)
async def create(
    body: ErasureRequest,
    site: SiteId,
    owner: Annotated[KeyOwner, Depends(authenticate)],
    services: ServicesDep,
) -> ErasureDone:
    """Remove a conversation (``conversation_id``) or everything of a visitor (``email``):
    conversations, offline messages, payloads, attempts and the receivers' response bodies;
    deliveries not yet sent are cancelled. Answers with the counts."""
    counts = await erase(
        services.engine,
        site,
        conversation_id=body.conversation_id,
        email=body.email,
        requested_by="admin" if owner.is_admin else "api",
    )
    return ErasureDone(subject="email" if body.email else "conversation", **counts.__dict__)
