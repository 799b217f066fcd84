"""``POST /v1/feedback``: a user's rating of a response, which later routing takes into account."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Response, post
from sqlalchemy.exc import IntegrityError

from routerd.api.openai import decode
from routerd.db.models import FeedbackRow
from routerd.errors import InvalidRequest, NotFound
from routerd.jobs.decision_log import learn
from routerd.schemas.catalog import Outcome, PromptFeatures


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Name the response (its ``id``) or the decision (the ``X-Routerd-Decision-Id`` header);
    `rating` runs from -1 (bad) to 1 (good)."""

    rating: Annotated[float, msgspec.Meta(ge=-1, le=1)]
    response_id: str | None = None
    decision_id: str | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


_decoder = msgspec.json.Decoder(FeedbackRequest)


@post("/v1/feedback", status_code=201)
async def feedback(request: Request) -> Response:
    gateway = request.app.state.gateway
    principal = await gateway.auth.principal(request)
    body: FeedbackRequest = decode(_decoder, await request.body())
    if not body.response_id and not body.decision_id:
        raise InvalidRequest("name the rated answer: response_id or decision_id", param="response_id")
    decision = await gateway.decisions.find(decision_id=body.decision_id, response_id=body.response_id)
    if decision is None or not decision.get("chosen_model"):
        raise NotFound("no routing decision is known for that response", code="decision_not_found")
    score = (body.rating + 1) / 2
    for attempt in (1, 2):
        try:
            row = await _store(gateway, decision, body, score, principal.subject)
            break
        except IntegrityError:
            # the audit log's writer inserted the decision between our look-up and our insert:
            # the second attempt finds it there
            if attempt == 2:
                raise
    features = msgspec.convert(decision["features"], PromptFeatures)
    outcome = Outcome(decision_id=decision["id"], model=decision["chosen_model"], features=features, rating=score)
    await learn(gateway.plugins.registry.scorers.values(), outcome)
    return Response(
        {"id": row.id, "decision_id": decision["id"], "model": decision["chosen_model"], "rating": body.rating}
    )


async def _store(gateway, decision: dict, body: FeedbackRequest, score: float, principal: str) -> FeedbackRow:
    """One transaction: the decision (if only in memory so far) and the feedback row."""
    async with gateway.database.session() as session:
        pending = gateway.decisions.remembered_row(decision["id"])
        if pending is not None:  # feedback can beat the audit log's writer to the database
            await session.merge(pending)
            await session.flush()
        row = FeedbackRow(
            decision_id=decision["id"],
            response_id=body.response_id or decision.get("response_id") or decision["id"],
            model=decision["chosen_model"],
            rating=score,
            comment=body.comment,
            principal=principal,
        )
        session.add(row)
    return row


ROUTES = [feedback]
