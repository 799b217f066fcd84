"""``POST /v1/feedback``: a user's rating of a response, which later routing takes into account."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Response, post

from routerd.api.openai import decode
from routerd.errors import InvalidRequest, NotFound

# An id no response or decision of this gateway can have (longer than the database's id columns, or with a NUL,
# which PostgreSQL's text refuses) is a 400 on any database, before any look-up.
_Ident = Annotated[str, msgspec.Meta(max_length=200, pattern="^[^\\x00]*$")]


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Name the response (its ``id``) or the decision (the ``X-Routerd-Decision-Id`` header);
    `rating` runs from -1 (bad) to 1 (good)."""

    rating: Annotated[float, msgspec.Meta(ge=-1, le=1)]
    response_id: _Ident | None = None
    decision_id: _Ident | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


_decoder = msgspec.json.Decoder(FeedbackRequest)


@post("/v1/feedback", status_code=201)
async def feedback(request: Request) -> Response:
    gateway = request.app.state.gateway
    principal = await gateway.auth.principal(request)
    body: FeedbackRequest = decode(_decoder, await request.body())
    if not body.response_id and not body.decision_id:
        raise InvalidRequest("name the rated answer: response_id or decision_id", param="response_id")
    decisions = gateway.decisions
    decision = await decisions.find(decision_id=body.decision_id, response_id=body.response_id)
    if decision is None or not decision.model:
        raise NotFound("no routing decision is known for that response", code="decision_not_found")
    ident = await decisions.rate(
        decision,
        score=(body.rating + 1) / 2,
        principal=principal.subject,
        comment=body.comment,
        response_id=body.response_id,
    )
    return Response({"id": ident, "decision_id": decision.id, "model": decision.model, "rating": body.rating})


ROUTES = [feedback]
