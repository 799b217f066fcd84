"""One chat completion request, after authentication and decoding (docs: ARCHITECTURE, "A chat request"):

0. the legacy ``functions`` / ``function_call`` translated to tools (`legacy_functions`), and audio output, which
   no backend makes, refused;
1. the skills the request is offered (`skills`), and the prompt's features;
2. the cache plugins, in order: a hit answers without routing or calling a model (`caching`);
3. routing: the hard constraints, the scorers, a `RoutingDecision`, reported to the decision log;
4. dispatch: the ranked models in order until one answers (streamed or not), through the skill loop when skills
   were offered; a client that leaves meanwhile cancels it (`disconnect`), and no model is tried after;
5. the answer, signed, with the routing headers; how the request went goes to the decision log, a complete
   answer to the caches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

import msgspec
from litestar.types import Receive, Scope, Send

from routerd.auth import headers_of
from routerd.config import Settings
from routerd.decisions import DecisionLog, RequestResult
from routerd.dispatch import Dispatcher
from routerd.errors import GatewayError, InvalidRequest
from routerd.pipeline.assembly import assemblable, assembled
from routerd.pipeline.caching import CachePolicy, Stores, cache_control, cache_query, copy, lookup, sampled
from routerd.pipeline.disconnect import ClientGone, while_connected
from routerd.pipeline.legacy_functions import (
    answer_in_legacy_form,
    asks_in_legacy_form,
    to_tools,
    uses_legacy_functions,
)
from routerd.pipeline.replay import replay
from routerd.pipeline.skills import SkillLoop, offered
from routerd.pipeline.streaming import StreamEnd, estimate_usage, relay_events, send_events
from routerd.routing.decision import RoutingDecision
from routerd.routing.engine import Router
from routerd.routing.features import extract_features
from routerd.schemas.catalog import Principal
from routerd.schemas.openai import AnswerMessage, ChatCompletion, ChatRequest, Choice, Usage
from routerd.schemas.pipeline import CachedAnswer, CacheQuery
from routerd.signature import Signature

_encoder = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")
SSE = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]
_BYPASS = CachePolicy(lookup=False, store=False)


def query_param(scope: Scope, name: str) -> str | None:
    """The first value of a query parameter (most requests have no query string at all)."""
    query = scope.get("query_string")
    if not query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None


def pinned_model(scope: Scope, requested: object, external_name: str) -> str | None:
    """The model a request names (``?model=`` wins over the body), or None to route."""
    name = query_param(scope, "model") or (requested if isinstance(requested, str) else None)
    if not name or name in (external_name, "auto"):
        return None
    return name


def quality_preference(scope: Scope, default: float) -> float:
    """The request's ``X-Routerd-Quality-Preference`` (0 = fastest and cheapest, 1 = best), or the
    configured default."""
    for name, value in scope["headers"]:
        if name == b"x-routerd-quality-preference":
            try:
                preference = float(value)
            except ValueError:
                preference = -1.0
            if not 0.0 <= preference <= 1.0:
                raise InvalidRequest(
                    "X-Routerd-Quality-Preference must be a number from 0 to 1",
                    param="X-Routerd-Quality-Preference",
                )
            return preference
    return default


def decision_headers(decision: RoutingDecision, model: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-routerd-model", model.encode("latin-1")), (b"x-routerd-decision-id", decision.id.encode())]
    runner_up = decision.runner_up
    if runner_up is not None:
        headers.append((b"x-routerd-runner-up", runner_up.id.encode("latin-1")))
    if decision.dispatcher is not None:  # LLM dispatcher mode
        headers.append((b"x-routerd-dispatcher", decision.dispatcher.header().encode("latin-1", "replace")))
    return headers


def refuse_audio_output(chat: ChatRequest) -> None:
    """Audio output: no backend makes it, so asking for it is a 400 naming the parameter (``modalities:
    ["text"]`` asks for the default, and passes)."""
    if chat.audio not in (msgspec.UNSET, None):
        raise InvalidRequest(
            "audio output is not supported by this gateway", param="audio", code="unsupported_parameter"
        )
    if chat.modalities and "audio" in chat.modalities:
        raise InvalidRequest(
            'audio output is not supported by this gateway; send modalities: ["text"] or leave it out',
            param="modalities",
            code="unsupported_parameter",
        )


async def send_json(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers += (_JSON, (b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_sse(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers + SSE})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class ChatPipeline:
    def __init__(
        self,
        settings: Settings,
        router: Router,
        dispatcher: Dispatcher,
        decisions: DecisionLog,
        signature: Signature,
        caches: Mapping[str, Any],
        skills: Mapping[str, Any],
    ) -> None:
        self.settings = settings
        self.router = router
        self.dispatcher = dispatcher
        self.decisions = decisions
        self.signature = signature
        self.caches = caches  # the registry's caches and skills, by name
        self.skills = skills
        self.stores = Stores(caches)
        self.loop = SkillLoop(settings.skills, dispatcher)

    async def handle(self, scope: Scope, receive: Receive, send: Send, chat: ChatRequest, principal: Principal):
        settings = self.settings
        legacy = False
        if uses_legacy_functions(chat):
            legacy = asks_in_legacy_form(chat)
            chat = to_tools(chat)
        if chat.audio is not msgspec.UNSET or chat.modalities is not msgspec.UNSET:
            refuse_audio_output(chat)
        self.signature.clean_request(chat)
        pinned = pinned_model(scope, chat.model, settings.routing.external_model_name)
        preference = quality_preference(scope, settings.routing.quality_preference)
        requested = chat.model if isinstance(chat.model, str) else None
        headers = headers_of(scope) if (self.caches or self.skills) else None
        skills = offered(settings.skills, self.skills, headers or {}, chat) if self.skills else {}
        features = extract_features(chat)
        query: CacheQuery | None = None
        policy = _BYPASS
        if self.caches:
            policy = cache_control(headers)
            if skills or (not settings.cache.sampled and sampled(chat)):
                policy = _BYPASS  # answers made with skills, or sampled, are not the same answer next time
            if policy.lookup or policy.store:  # the request is hashed only for a cache that will see it
                query = cache_query(chat, principal, pinned=pinned, preference=preference, max_age=policy.max_age)
            if query is not None and policy.lookup:
                found = await lookup(self.caches, query, settings.cache.lookup_timeout)
                if found is not None:
                    await self._from_cache(send, chat, found, features, preference, principal, requested, legacy)
                    return
        needs = self.router.needs(chat, features, tools=bool(skills))
        decision = await self.router.decide(chat, pinned=pinned, preference=preference, features=features, needs=needs)
        self.decisions.opened(decision, principal, requested)
        started = time.perf_counter()
        cache_header = []
        if self.caches:
            cache_header = [(b"x-routerd-cache", b"miss" if policy.lookup else b"bypass")]
        storing = query if (query is not None and policy.store) else None

        def closed(status: str, model: str | None = None, **result: Any) -> None:
            latency = (time.perf_counter() - started) * 1000
            self.decisions.closed(decision.id, RequestResult(status, model, latency_ms=latency, **result))

        try:
            if skills:
                loop = await while_connected(receive, self.loop.run(chat, decision.ranked, skills))
                completion, entry, calls = loop.completion, loop.entry, loop.calls
            elif chat.stream:
                start = await while_connected(receive, self.dispatcher.start_stream(decision.ranked, chat))
                ttft = (time.perf_counter() - started) * 1000

                def ended(end: StreamEnd) -> None:
                    closed(
                        end.status,
                        start.entry.id,
                        ttft_ms=ttft,
                        prompt_tokens=end.usage.prompt_tokens,
                        completion_tokens=end.usage.completion_tokens,
                        response_id=end.response_id,
                    )
                    if storing is not None and end.status == "ok" and not end.tool_calls:
                        self._store_stream(storing, chat, start.entry.id, end)

                headers = decision_headers(decision, start.entry.id) + cache_header + SSE
                events = relay_events(self.signature, self.dispatcher, chat, start, ended, legacy_functions=legacy)
                try:
                    await send_events(receive, send, headers, events)
                finally:
                    await start.rest.aclose()  # the upstream closed, its place given back, also if the relay never ran
                return
            else:
                if settings.dispatch.stream_json_requests and assemblable(chat):
                    work = assembled(self.dispatcher, decision.ranked, chat)
                else:
                    work = self.dispatcher.chat(decision.ranked, chat)
                completion, entry = await while_connected(receive, work)
                calls = []
        except ClientGone:  # nobody to answer: the upstream request was cancelled, no model is tried after it
            closed("cancelled")
            return
        except GatewayError:
            closed("error")
            raise
        if storing is not None and not calls:
            self.stores.store(storing, copy(completion))
        completion = self.finish(chat, completion, entry.id, legacy)
        usage = completion.usage
        closed(
            "ok",
            entry.id,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            response_id=completion.id,
            skill_calls=calls or None,
        )
        headers = decision_headers(decision, entry.id) + cache_header
        if chat.stream:  # the skill loop's last answer, to a client that asked for a stream
            await send_sse(send, replay(completion, include_usage=chat.wants_usage_in_stream()), headers)
        else:
            await send_json(send, _encoder.encode(completion), headers)

    def finish(self, chat: ChatRequest, completion: ChatCompletion, model: str, legacy: bool = False) -> ChatCompletion:
        """Name the model, sign text answers, and fill in usage when the backend gave none; with `legacy` (the
        client sent ``functions``), tool calls go back as legacy function calls."""
        completion.model = model
        signature = self.signature
        text = ""
        for choice in completion.choices:
            content = choice.message.content
            if isinstance(content, str):
                content = signature.strip(content)
                if not chat.wants_json() and not choice.message.tool_calls:
                    content += signature.render(model)
                choice.message.content = content
                text += content
        if completion.usage is None:
            completion.usage = estimate_usage(chat, text)
        if legacy:
            answer_in_legacy_form(completion)
        return completion

    def _store_stream(self, query: CacheQuery, chat: ChatRequest, model: str, end: StreamEnd) -> None:
        """A streamed answer, complete and successful, stored as the completion it amounts to."""
        if chat.n not in (msgspec.UNSET, None, 1):
            return
        message = AnswerMessage(role="assistant", content=self.signature.strip(end.text))
        completion = ChatCompletion(
            id=end.response_id,
            created=int(time.time()),
            model=model,
            choices=[Choice(0, message, end.finish_reason or "stop")],
            usage=end.usage,
        )
        self.stores.store(query, completion)

    async def _from_cache(
        self,
        send: Send,
        chat: ChatRequest,
        found: tuple[str, CachedAnswer],
        features: Any,
        preference: float,
        principal: Principal,
        requested: str | None,
        legacy: bool,
    ) -> None:
        """Answer from a cache hit, in the shape the client asked for, and log it as a decision of its own."""
        name, hit = found
        completion = copy(hit.completion)
        model = completion.model
        decision = RoutingDecision(self.router.new_id(), features, [], pinned=False, preference=preference)
        completion.id = f"chatcmpl-{uuid4().hex}"
        completion.created = int(time.time())
        completion = self.finish(chat, completion, model, legacy)
        if completion.usage is None:
            completion.usage = Usage()
        similarity = float(hit.similarity)
        cached = {"cache": name, "entry": str(hit.entry)[:200], "similarity": round(similarity, 4)}
        self.decisions.opened(decision, principal, requested)
        self.decisions.closed(
            decision.id,
            RequestResult(
                "ok",
                model,
                latency_ms=0.0,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                response_id=completion.id,
                cache=cached,
            ),
        )
        value = b"hit" if similarity >= 1.0 else b"semantic-hit; similarity=%.4f" % similarity
        headers = [
            (b"x-routerd-model", model.encode("latin-1", "replace")),
            (b"x-routerd-decision-id", decision.id.encode()),
            (b"x-routerd-cache", value),
        ]
        if chat.stream:
            await send_sse(send, replay(completion, include_usage=chat.wants_usage_in_stream()), headers)
        else:
            await send_json(send, _encoder.encode(completion), headers)
