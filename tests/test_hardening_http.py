"""The HTTP front end against hostile clients (issue 14; docs/hardening.md, "The HTTP front end"): header limits,
head/body/idle deadlines, the connection limit, the open-file limit, the shutdown deadline, admin on loopback
against DNS rebinding and CSRF, deeply nested JSON and absurd ``max_tokens``. Each test makes the attack against a
served gateway over real sockets and checks what the gateway does."""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from hostile import (
    connect,
    endless_upstream,
    head,
    read_response,
    read_until_closed,
    routerd_serve,
    send_all,
    status_of,
    trickle,
)
from routerd.config import ServerSettings
from routerd.testing import build_app
from routerd.testing.fake_backend import FAKE_PLUGIN
from servers import running_gateway

CHAT = {"model": "routerd", "messages": [{"role": "user", "content": "hi"}]}


def port_of(base: str) -> int:
    return urlsplit(base).port or 80


@pytest.fixture
def gateway(tmp_path):
    """A served gateway (the fake backend) with short deadlines; yields its port."""
    server = {"header_timeout": 2, "body_timeout": 2, "keepalive_timeout": 1}
    with running_gateway(build_app(tmp_path, {"server": server}, [FAKE_PLUGIN])) as base:
        yield port_of(base)


# Header limits


def test_a_huge_header_is_refused_431_without_stalling_other_clients(gateway):
    sock = connect(gateway)
    answers: list[float] = []

    def others() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(20):
                start = time.monotonic()
                assert client.get(f"http://127.0.0.1:{gateway}/healthz").status_code == 200
                answers.append(time.monotonic() - start)

    thread = threading.Thread(target=others)
    thread.start()
    sent = send_all(sock, head(extra=b"X-Big: " + b"a" * (64 * 1024 * 1024) + b"\r\n"))
    answer, closed = read_until_closed(sock, 10)
    thread.join(30)
    assert status_of(answer) == 431, answer[:200]
    assert closed < 10
    assert sent < 64 * 1024 * 1024  # the gateway stopped reading long before the end
    assert len(answers) == 20 and max(answers) < 2, answers


UNFINISHED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.mark.parametrize(
    "request_head",
    [
        head(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))),
        head(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(150))),
        head(extra=b"X-Long: " + b"a" * 9000 + b"\r\n"),
        UNFINISHED + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 4000) for i in range(12)),
    ],
    ids=["100,000 headers", "150 small headers", "one 9 KB header", "an unfinished 48 KB head"],
)
def test_too_many_or_too_large_headers_are_refused_431(gateway, request_head):
    sock = connect(gateway)
    send_all(sock, request_head)
    answer, closed = read_until_closed(sock, 10)
    assert status_of(answer) == 431, answer[:200]
    assert closed < 10


def test_the_configured_head_and_body_limits_are_the_ones_enforced(tmp_path):
    """server.max_headers, max_header_line_bytes, max_header_bytes and body_min_rate as configured, not their
    defaults: heads just under each limit pass, just over it get 431; a body sent at ~10 KB/s, above the default
    minimum rate (1 KB/s) but under this one (50 KB/s), is cut once body_timeout has passed."""
    server = {
        "max_headers": 10,
        "max_header_line_bytes": 1024,
        "max_header_bytes": 4096,
        "body_timeout": 1,
        "body_min_rate": 50_000,
    }

    def answer_to(port: int, request: bytes) -> int | None:
        sock = connect(port)
        send_all(sock, request)
        answer, _ = read_until_closed(sock, 10)
        return status_of(answer)

    with running_gateway(build_app(tmp_path, {"server": server}, [FAKE_PLUGIN])) as base:
        port = port_of(base)
        headers = lambda count, size: b"".join(b"X-H%d: %s\r\n" % (i, b"a" * size) for i in range(count))  # noqa: E731
        assert answer_to(port, head(extra=headers(8, 10) + b"Connection: close\r\n")) == 200  # 10 with Host
        assert answer_to(port, head(extra=headers(12, 10))) == 431
        assert answer_to(port, head(extra=headers(1, 900) + b"Connection: close\r\n")) == 200
        assert answer_to(port, head(extra=headers(1, 1100))) == 431
        assert answer_to(port, head(extra=headers(6, 900))) == 431  # each line allowed, 5.4 KB in all
        sock = connect(port)
        send_all(sock, head("/v1/chat/completions", method="POST", length=30_000))
        started = time.monotonic()
        for _ in range(30):
            try:
                sock.send(b"x" * 1000)
            except OSError:
                break
            time.sleep(0.1)
        answer, _ = read_until_closed(sock, 10)
    assert status_of(answer) == 408, answer[:200]
    assert time.monotonic() - started < 1 + 2  # cut at body_timeout, not after the 3 s the body would take


def test_ordinary_heads_and_large_bodies_pass_on_a_kept_alive_connection(gateway):
    """The head limits count heads only: bodies of 300 KB (several reads each) and a head of 24 KB in 90 headers,
    one after the other on one connection, are all answered."""
    sock = connect(gateway)
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * 300_000}], "max_tokens": 0}).encode()
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 260) for i in range(90))
    for _ in range(3):
        send_all(sock, head("/v1/chat/completions", method="POST", length=len(body)) + body)
        status, answer = read_response(sock)
        assert status == 400, answer  # max_tokens 0, refused by the schema (not by the head limits)
        assert json.loads(answer)["error"]["param"] == "max_tokens"
        send_all(sock, head(extra=headers))
        assert read_response(sock)[0] == 200


# Deadlines


def test_slow_clients_are_cut_within_their_deadlines(gateway):
    """Slowloris (a head trickled a byte every 0.3 s), a connection that sends nothing, an idle kept-alive one,
    a body that stops short of its Content-Length, and a body trickled a byte every 0.3 s: each is closed within
    its deadline (2 s; keep-alive 1 s) + 2 s."""
    stop = threading.Event()
    start = time.monotonic()
    slowloris = connect(gateway)
    threading.Thread(target=trickle, args=(slowloris, head() * 50, 0.3, stop.is_set), daemon=True).start()
    silent = connect(gateway)
    idle = connect(gateway)
    send_all(idle, head())
    short_body = connect(gateway)
    send_all(short_body, head("/v1/chat/completions", method="POST", length=1000) + b'{"model": ')
    slow_body = connect(gateway)
    send_all(slow_body, head("/v1/chat/completions", method="POST", length=1000))
    threading.Thread(target=trickle, args=(slow_body, b"x" * 1000, 0.3, stop.is_set), daemon=True).start()
    try:
        results = {}
        for name, sock in [
            ("slowloris", slowloris),
            ("silent", silent),
            ("idle", idle),
            ("short body", short_body),
            ("slow body", slow_body),
        ]:
            answer, closed = read_until_closed(sock, 12)
            results[name] = answer, time.monotonic() - start if closed < 12 else closed
    finally:
        stop.set()
    for name, (answer, closed) in results.items():  # seconds from the start: each within its deadline + 2 s
        assert closed < 2 + 2, (name, closed, answer[:200])
    assert status_of(results["slowloris"][0]) == 408
    assert status_of(results["silent"][0]) == 408
    assert status_of(results["idle"][0]) == 200  # answered, then closed when idle
    assert status_of(results["short body"][0]) == 408
    assert status_of(results["slow body"][0]) == 408


def test_a_request_that_keeps_sending_is_not_cut(gateway):
    """A body sent at 64 KB/s for 5 s (over the 2 s body deadline, above the 1 KB/s minimum rate) is answered."""
    sock = connect(gateway)
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * 320_000}], "max_tokens": 0}).encode()
    send_all(sock, head("/v1/chat/completions", method="POST", length=len(body)))
    for start in range(0, len(body), 6400):
        send_all(sock, body[start : start + 6400])
        time.sleep(0.1)
    answer, _ = read_until_closed(sock, 10)
    assert status_of(answer) == 400, answer[:300]  # the schema's answer (max_tokens 0): the body arrived whole


# Connections


def test_connections_beyond_the_limit_get_503(tmp_path):
    config = {"server": {"max_connections": 5}}
    with running_gateway(build_app(tmp_path, config, [FAKE_PLUGIN])) as base:
        port = port_of(base)
        held = [connect(port) for _ in range(5)]
        time.sleep(0.3)
        sock = connect(port)
        send_all(sock, head())
        answer, _ = read_until_closed(sock, 10)
        assert status_of(answer) == 503, answer[:200]
        for other in held:
            other.close()
        time.sleep(0.3)
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_serve_raises_the_open_file_limit_and_shuts_down_within_its_deadline_during_an_endless_stream(tmp_path):
    """`routerd serve` started with an open-file soft limit of 256 raises it to the hard limit (and refuses a 9 KB
    header: it serves the guarded protocol); with a stream that never ends in progress, SIGTERM ends the process
    within ``server.shutdown_timeout`` (2 s here) + 5 s."""
    assert ServerSettings().shutdown_timeout < 30  # under Kubernetes' default grace period
    with endless_upstream() as upstream:
        tables = {"server": {"shutdown_timeout": 2}, "plugins.openai": {"base_url": upstream}}
        with routerd_serve(tmp_path, tables, open_files=(256, 4096)) as server:
            assert server.open_file_limit() == (4096, 4096)
            sock = connect(server.port)  # and its protocol is the guarded one
            send_all(sock, head(extra=b"X-Long: " + b"a" * 9000 + b"\r\n"))
            assert status_of(read_until_closed(sock, 10)[0]) == 431
            body = {**CHAT, "model": "endless", "stream": True}
            with (
                httpx.Client(timeout=30) as client,
                client.stream("POST", f"{server.base}/v1/chat/completions", json=body) as stream,
            ):
                assert stream.status_code == 200
                lines = stream.iter_lines()
                assert next(line for line in lines if line.startswith("data:"))
                took = server.stop(timeout=30)
    assert took < 2 + 5, server.output()
    assert server.process.returncode in (0, -15), server.output()
    # the stream was disconnected a second before the deadline and ended as any stream whose client left
    assert "Traceback" not in server.output() and "Application shutdown complete" in server.output()


def test_out_of_open_files_is_a_503_that_does_not_blame_the_backend(tmp_path):
    """With the gateway's open files exhausted by idle connections, a request on an open connection gets 503
    (the gateway overloaded, not the backend); once they close, the same backend answers: its breaker (opened by
    a single failure here) never counted the failure."""
    with endless_upstream(close_connections=True) as upstream:
        tables = {
            "server": {"header_timeout": 60},
            "plugins.openai": {"base_url": upstream},
            "dispatch": {"breaker_failures": 1, "breaker_cooldown": 600},
        }
        with routerd_serve(tmp_path, tables, open_files=(256, 256)) as server:
            body = {**CHAT, "model": "endless", "max_tokens": 5}
            with httpx.Client(timeout=30) as client:
                first = client.post(f"{server.base}/v1/chat/completions", json=body)
                assert first.status_code == 200, first.text  # the connection is now open, kept alive
                hogs = [connect(server.port) for _ in range(300)]
                deadline = time.monotonic() + 10
                while server.open_files() < 250 and time.monotonic() < deadline:
                    time.sleep(0.1)
                starved = client.post(f"{server.base}/v1/chat/completions", json=body)
                for hog in hogs:
                    hog.close()
                time.sleep(1.5)
                healthy = client.post(f"{server.base}/v1/chat/completions", json=body).status_code
    assert starved.status_code == 503, starved.text
    assert starved.json()["error"]["code"] == "gateway_overloaded", starved.text
    assert starved.headers["Retry-After"] == "1"
    assert healthy == 200, server.output()
    assert "out of rotation" not in server.output()


# Admin on loopback


@pytest.fixture
def open_admin(tmp_path):
    """A gateway without an admin key: loopback clients are admin."""
    config = {"plugins": {"apikey_auth": {"admin_api_key": None}}}
    with running_gateway(build_app(tmp_path, config, [FAKE_PLUGIN])) as base:
        yield base


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "[::1]:{port}", "127.0.0.2"])
def test_loopback_admin_answers_loopback_host_names(open_admin, host):
    port = port_of(open_admin)
    response = httpx.get(f"{open_admin}/admin/plugins", headers={"Host": host.format(port=port)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebind.attacker.example"},
        {"Host": "rebind.attacker.example:{port}"},
        {"Host": "0.0.0.0:{port}"},
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:3000"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()),
)
def test_loopback_admin_refuses_dns_rebinding_and_cross_origin_requests(open_admin, headers):
    port = port_of(open_admin)
    headers = {name: value.format(port=port) for name, value in headers.items()}
    response = httpx.get(f"{open_admin}/admin/plugins", headers=headers)
    assert response.status_code == 403, response.text
    assert "admin endpoints refuse this loopback request" in response.json()["error"]["message"]


def test_a_cross_origin_text_plain_post_does_not_reach_reprofile(open_admin):
    """The CSRF a web page can make with no CORS preflight: a ``text/plain`` form POST."""
    headers = {"Content-Type": "text/plain", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}
    response = httpx.post(f"{open_admin}/admin/reprofile", content=b"{}", headers=headers)
    assert response.status_code == 403, response.text


def test_loopback_admin_answers_its_own_origin_and_leaves_v1_to_cross_origin_pages(open_admin):
    port = port_of(open_admin)
    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert httpx.get(f"{open_admin}/admin/plugins", headers=own).status_code == 200
    # a local web UI on another origin still reaches the open /v1 (it is just not admin)
    cross = {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}
    assert httpx.get(f"{open_admin}/v1/models", headers=cross).status_code == 200


def test_with_an_admin_key_the_key_decides(tmp_path):
    config = {"plugins": {"apikey_auth": {"admin_api_key": "the-key"}}}
    with running_gateway(build_app(tmp_path, config, [FAKE_PLUGIN])) as base:
        hostile = {"Host": "rebind.attacker.example", "Origin": "http://attacker.example"}
        assert httpx.get(f"{base}/admin/plugins", headers=hostile).status_code == 401
        keyed = {**hostile, "Authorization": "Bearer the-key"}
        assert httpx.get(f"{base}/admin/plugins", headers=keyed).status_code == 200


# Request bodies


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"model": "routerd", "messages": [{"role": "user", "content": "hi"}], "zzz": ' + nested(100_000) + "}",
        '{"model": "routerd", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": '
        '"json_schema", "json_schema": {"name": "a", "schema": {"a": ' + nested(100_000) + "}}}}",
        '{"model": "routerd", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", '
        '"function": {"name": "f", "parameters": {"a": ' + nested(100_000) + "}}}]}",
    ],
    ids=["unknown field", "response_format", "tools"],
)
def test_deeply_nested_json_is_a_400_without_a_traceback(gateway, body, caplog):
    caplog.set_level(logging.WARNING)
    response = httpx.post(
        f"http://127.0.0.1:{gateway}/v1/chat/completions",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "nested too deeply" in response.json()["error"]["message"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_deeply_nested_feedback_is_a_400(gateway):
    body = '{"response_id": "x", "rating": 1, "extra": ' + nested(100_000) + "}"
    response = httpx.post(
        f"http://127.0.0.1:{gateway}/v1/feedback", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]["message"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_absurd_max_tokens_is_a_400_naming_the_field(gateway, field):
    response = httpx.post(f"http://127.0.0.1:{gateway}/v1/chat/completions", json={**CHAT, field: 10**12})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field
