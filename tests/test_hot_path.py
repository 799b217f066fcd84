"""The request path's fast parts (bench/overhead.py measures them): the OpenAI POST endpoints,
served as ASGI handlers, answer as Litestar's HTTP handlers would; a stream reaches a slow
reader whole and in order; SSE parsing does not depend on where the network splits a stream."""

from __future__ import annotations

import asyncio
import json
import random
import re
from unittest import mock

import pytest
from aiohttp.streams import StreamReader
from litestar.testing import TestClient

import routerd.pipeline.streaming as streaming
from routerd.signature import Signature
from routerd.testing import build_app
from routerd.testing.fake_backend import FAKE_PLUGIN
from routerd.toolkit.http import sse_events

POST_ENDPOINTS = ["/v1/chat/completions", "/v1/embeddings"]
# A small valid body of each endpoint (each refuses the other's fields: unknown parameters are a 400).
SMALL_BODIES = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/embeddings": {"input": "hi"},
}


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_other_methods_are_405_in_the_openai_shape_and_options_is_204(routerd_client, path):
    options = routerd_client.options(path)
    assert options.status_code == 204
    assert options.headers["allow"] == "OPTIONS, POST"
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        response = routerd_client.request(method, path)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, OPTIONS"
        if method != "HEAD":
            assert response.json()["error"] == {
                "message": "Method Not Allowed",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_bodies_over_the_limit_are_413_announced_or_streamed(tmp_path, path):
    app = build_app(tmp_path, {"server": {"max_body_bytes": 2048}}, [FAKE_PLUGIN])
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 4096}], "input": "x"}).encode()
    with TestClient(app) as client:
        announced = client.post(path, content=body, headers={"content-type": "application/json"})
        streamed = client.post(path, content=iter([body[:1500], body[1500:]]))
        small = client.post(path, json=SMALL_BODIES[path])
    for response in (announced, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["message"] == "Request Entity Too Large"
    assert small.status_code in (200, 404)  # within the limit: answered (404: no embedding model)


def test_chat_json_and_headers(routerd_client, fake_backend):
    body = {"model": "fake-large", "messages": [{"role": "user", "content": "hi"}]}
    response = routerd_client.post("/v1/chat/completions?model=fake-small", json=body)  # the query wins
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-routerd-model"] == "fake-small"
    assert response.headers["x-routerd-decision-id"].startswith("rd-")
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake backend.\n\nModel: fake-small"


def test_a_slow_reader_gets_the_whole_stream_in_order(routerd_client, fake_backend, monkeypatch):
    monkeypatch.setattr(streaming, "WRITE_BUFFER", 512)  # the relay waits for the writer often
    words = [f"w{i}" for i in range(3000)]
    fake_backend.reply = " ".join(words)
    body = {"model": "fake-small", "messages": [{"role": "user", "content": "x"}], "stream": True}
    text, lines = [], []
    with routerd_client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                text += [c["delta"].get("content") or "" for c in chunk["choices"]]
    assert "".join(text) == " ".join(words) + "\n\nModel: fake-small"
    assert [line for line in lines if line][-1] == "data: [DONE]"


STREAMS = [
    (b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\ndata: {"late":1}\n\n', [b'{"a":1}', b'{"b":2}']),
    (b"data: one\r\n\r\ndata:two\r\n\r\n", [b"one", b"two"]),
    (b": comment\nevent: x\ndata: one\ndata: two\n\nid: 5\ndata: three\n\n", [b"one\ntwo", b"three"]),
    (b"data: a\n\ndata: tail without a newline", [b"a", b"tail without a newline"]),
    (b"\n\n\ndata:  spaced\n\ndata: x\r\r\n\ndata: [DONE]", [b"spaced", b"x"]),
]


async def _parse(raw: bytes, cuts: list[int]) -> list[bytes]:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())

    async def network() -> None:
        position = 0
        for cut in [*cuts, len(raw)]:
            reader.feed_data(raw[position:cut])
            position = cut
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.create_task(network())
    events = [event async for event in sse_events(mock.Mock(content=reader))]
    await feeding
    return events


@pytest.mark.parametrize(("raw", "expected"), STREAMS)
def test_sse_events_do_not_depend_on_where_reads_split_the_stream(raw, expected):
    rng = random.Random(raw)

    async def every_split() -> None:
        for _ in range(100):
            cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(0, 6)))
            assert await _parse(raw, cuts) == expected, cuts

    asyncio.run(every_split())


ANSWERS = [
    "Hello world.",
    "Line one\n\nLine two",
    "Ends with blank lines\n\n",
    "Code:\n  x = 1\n",
    "Modelling is fun\nModel: a word, not a signature? It is the marker: stripped",
    "x\n\nModel: big-70b",
    "x\n\nModel: big-70b\n\nModel: big-70b  \n",
    "\n\nModel: only",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_a_streamed_answer_is_signed_as_the_same_answer_in_one_piece(answer):
    """However the model's chunks split the text (the line breaks before an echoed ``Model:``
    often come as a chunk of their own), the stream holds back exactly what `strip` removes."""
    signature = Signature("\n\nModel: {model}")
    rng = random.Random(answer)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(answer)), rng.randint(0, min(6, len(answer) - 1))))
        parts = [answer[i:j] for i, j in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
        hold = signature.holdback()
        streamed = "".join(hold.feed(part) for part in parts) + hold.finish()
        assert streamed == signature.strip(answer), parts


FEATURE_TEXTS = [
    "Say hello.",
    "WRITE A PYTHON FUNCTION THAT SORTS A LIST; IT MUST HANDLE EDGE CASES.",
    "Solve 3 + 4 = x. How Many apples? Respond Only In JSON format.",
    "A) one\nB) two\nC) three\nD) four\nWhich of the following is TRUE OR FALSE?",
    "def f(x):\n    return x;\nclass Bar:\n  pass\n#include <stdio.h>\nimport os",
    "Explain step by step, with pros and cons, the trade-off; at least the edge case and edge cases, multi-step.",
    "tl;dr: summarise the key points. Translate it into French, then in German. Stack trace? unit tests!",
    "Compose, in a few lines, a short poem; then write a story. Output JSON only, as a json object. C++ code",
    "\u0130stanbul \u0130E ve \u0130L, translate into English",  # lower-cased, a dotted I grows a character
    "Wie kann ich die Liste sortieren und was ist der schnellste Weg?",
    "\u5982\u4f55\u5728Python\u4e2d\u5bf9\u5217\u8868\u8fdb\u884c\u6392\u5e8f",
    "",
]


def _reference_count(name: str, text: str) -> int:
    """A keyword signal's count as one regular expression over the text's words finds it."""
    from routerd.routing import features

    words, phrases = features._KEYWORDS[name]
    entries = sorted([*words.split(), *phrases], key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(e) for e in entries) + r")\b")
    return len(pattern.findall(" ".join(features._words(text.lower()))))


@pytest.mark.parametrize("text", FEATURE_TEXTS)
def test_keyword_tables_count_what_one_pattern_per_signal_would(text):
    """Prompt features count keywords in one pass over the words (a pattern per signal costs a long
    prompt too much); every count must be what that signal's pattern over the words finds."""
    from routerd.routing import features

    reading = features._Reading(text)
    for name in features._KEYWORDS:
        expected = _reference_count(name, text) + (text.lower().count("c++") if name == "coding" else 0)
        assert reading.counts[features._INDEX[name]] == expected, name


@pytest.mark.parametrize("text", FEATURE_TEXTS)
def test_patterns_skipped_for_want_of_their_needles_would_have_found_nothing(text):
    from routerd.routing import features

    reading = features._Reading(text)
    code = sum(min(text.count(literal), 5) for literal in features._CODE_LITERALS)
    code += features._count(features._CODE_SYNTAX, text) + features._count(features._LINE_END_SEMICOLON, text)
    arithmetic = features._count(features._ARITHMETIC, text) + features._count(features._NOTATION, text)
    assert reading.signal("code_syntax") == min(code, 5)
    assert reading.signal("arithmetic") == min(arithmetic, 5)
    assert reading.signal("creative_ask") == features._count(features._CREATIVE_ASK, text)
    assert reading.json == bool(features._JSON_ASK.search(text))


def test_a_long_message_is_read_at_its_ends():
    from routerd.routing.features import HEAD, TAIL, extract_features
    from routerd.schemas.openai import ChatRequest, Message

    filler = "lorem ipsum dolor sit amet " * 40_000  # a megabyte of it
    asks = {
        "Write a Python function that parses this log: ": "coding",
        "": "general",
    }
    for start, category in asks.items():
        text = start + filler
        found = extract_features(ChatRequest(messages=[Message(role="user", content=text)]))
        assert (found.category, found.prompt_tokens, found.text) == (category, len(text) // 4, text)
    # the ask at the end is seen; a keyword in the unread middle is not
    middle = filler[: HEAD + 10] + " solve the equation, calculate the integral " + filler[: TAIL + 10]
    tail = filler[:HEAD] + "... Summarize the above in three bullet points."
    for text, category in ((middle, "general"), (tail, "summarization")):
        found = extract_features(ChatRequest(messages=[Message(role="user", content=text)]))
        assert found.category == category


class RecordingTransport:
    """Stands in for the socket transport under `CoalescingTransport`: records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def test_writes_of_one_event_loop_step_leave_in_one_write():
    async def scenario() -> None:
        from routerd.http_server import CoalescingTransport

        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.writelines([b"{", b"}"])
        assert raw.writes == [] and transport.get_write_buffer_size() == 7 + 21
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5)  # the rest is the transport's
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        transport.write(b"data: 1\n\n")  # a later step: a write of its own
        await asyncio.sleep(0)
        transport.write(b"last")
        transport.close()  # what is held goes out before the close
        assert raw.writes[1:] == [b"data: 1\n\n", b"last"] and raw.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing more to send
        assert len(raw.writes) == 3

        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"dropped")
        transport.abort()
        await asyncio.sleep(0)
        assert raw.writes == [] and raw.aborted

    asyncio.run(scenario())


def _exchange(port: int, payload: bytes, responses: int) -> tuple[list[bytes], bool]:
    """Send raw bytes; read `responses` HTTP responses (Content-Length framed); and whether the
    server then closed the connection."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data, found = b"", []
        while len(found) < responses:
            head_end = data.find(b"\r\n\r\n")
            if head_end != -1:
                head = data[:head_end].lower()
                length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                if len(data) >= head_end + 4 + length:
                    found.append(data[: head_end + 4 + length])
                    data = data[head_end + 4 + length :]
                    continue
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return found, closed


def test_the_served_gateway_answers_keep_alive_pipelined_and_closing_clients(tmp_path):
    from servers import running_gateway

    app = build_app(tmp_path, {}, [FAKE_PLUGIN])
    body = json.dumps({"model": "fake-small", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    closing = request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    with running_gateway(app) as base:
        port = int(base.rsplit(":", 1)[1])
        pipelined, still_open = _exchange(port, request * 3, 3)
        last, closed = _exchange(port, request + closing, 2)
        bad, bad_closed = _exchange(port, b"NOT HTTP\r\n\r\n", 1)
    for response in pipelined + last:
        head, answer = response.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"x-routerd-model: fake-small" in head
        assert json.loads(answer)["choices"][0]["message"]["content"].endswith("Model: fake-small")
    assert not still_open and closed  # keep-alive stays open; Connection: close is honoured
    assert bad[0].startswith(b"HTTP/1.1 400") and bad_closed


def _strip_from_the_start(signature: Signature, text: str) -> str:
    """What `Signature.strip` must return: the trailing-signature pattern applied to the whole text
    until nothing more is removed."""
    while True:
        stripped = signature._trailing.sub("", text)
        if stripped == text:
            return text
        text = stripped


@pytest.mark.parametrize("template", ["\n\nModel: {model}", "-- {model} --", "{model}", "by {model} ({model})"])
def test_stripping_a_signature_looks_only_near_the_end_and_finds_the_same(template):
    signature = Signature(template)
    rng = random.Random(template)
    pieces = ["Model: ", "Model:", "-- ", " --", "by ", " (", ")", "x-7b", "\n", "\n\n", " ", "\t", "\r"]
    pieces += ["\u00a0", "a", "word ", "y" * 190, "z" * 205, "Model: " + "m" * 199, "Model: " + "m" * 201]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.5:
            text += signature.render(rng.choice(["x-7b", "big model", "m" * 200]))
            text += rng.choice(["", "\n", "  \n ", "\u00a0"])
        assert signature.strip(text) == _strip_from_the_start(signature, text), repr(text)


def test_the_app_collects_young_objects_less_often_while_it_runs(tmp_path):
    import gc

    from routerd.app import GC_YOUNG_THRESHOLD

    before = gc.get_threshold()
    with TestClient(build_app(tmp_path, {}, [FAKE_PLUGIN])):
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_decision_ids_are_unique_unguessable_and_in_time_order():
    import time

    from routerd.routing.engine import DecisionIds

    ids = DecisionIds()
    first = [ids() for _ in range(1000)]  # more than one pool of random bytes
    time.sleep(0.002)
    later = ids()
    assert len(set(first)) == 1000
    assert all(i.startswith("rd-") and len(i) == 35 and int(i[3:], 16) >= 0 for i in first)
    assert later > max(first)  # a later millisecond sorts later
    assert len({i[15:] for i in first}) == 1000  # the 80 random bits differ every time


def test_the_diversity_scorer_keeps_its_counts_as_its_window_moves():
    from collections import Counter

    from routerd import Outcome, PromptFeatures
    from routerd_scorers.diversity import DiversityScorer

    scorer = DiversityScorer(window=10, max_penalty=0.5)
    rng = random.Random(3)
    features = PromptFeatures(text="x")

    async def run() -> None:
        for _ in range(300):
            rating = None if rng.random() < 0.8 else 1.0  # feedback does not count as a pick
            await scorer.learn(Outcome(decision_id="d", model=rng.choice("abcd"), features=features, rating=rating))
            assert scorer.counts == Counter(scorer.recent) and len(scorer.recent) <= 10

    asyncio.run(run())


def test_the_diversity_scorer_reuses_contributions_only_while_they_hold():
    """Its contributions are made once per count; they must be what a fresh computation gives, as the window
    fills and moves and the candidates change."""
    from routerd import ModelInfo, Outcome, PromptFeatures
    from routerd_scorers.diversity import DiversityScorer

    scorer = DiversityScorer(window=20, max_penalty=0.5)
    features = PromptFeatures(text="x")
    models = [ModelInfo(name=name, backend="b") for name in "abcdef"]
    rng = random.Random(5)

    def expected(candidates) -> dict[str, tuple[float, str]]:
        total = len(scorer.recent)
        fair = 1 / len(candidates)
        found = {}
        for model in candidates:
            share = list(scorer.recent).count(model.name) / total
            factor = 1 - 0.5 * max(0.0, (share - fair) / (1 - fair))
            found[model.name] = (factor, f"won {share:.0%} of the last {total} decisions")
        return found

    async def run() -> None:
        for _ in range(200):
            await scorer.learn(Outcome(decision_id="d", model=rng.choice("aab"), features=features))
            candidates = rng.sample(models, rng.randint(2, 6))
            got = await scorer.score(features, candidates)
            assert {m: (c.score, c.reason) for m, c in got.items()} == expected(candidates)
            assert all(c.aspect == "multiplier" for c in got.values())

    asyncio.run(run())


def test_usage_estimates_count_the_chat_templates_tokens_too():
    """For a backend that reports no usage (llama-cpp-python's streams): four characters a token, plus three per
    message and three before the reply, so a greeting is not one token."""
    from routerd.pipeline.streaming import estimate_usage
    from routerd.schemas.openai import ChatRequest, Message

    hi = estimate_usage(ChatRequest(messages=[Message(role="user", content="Hi!")]), "Hello there, friend")
    assert (hi.prompt_tokens, hi.completion_tokens, hi.total_tokens) == (6, 4, 10)
    history = [Message(role=role, content="x" * 400) for role in ("system", "user", "assistant", "user")]
    long = estimate_usage(ChatRequest(messages=history), "")
    assert (long.prompt_tokens, long.completion_tokens) == (3 + 4 * (3 + 100), 0)
