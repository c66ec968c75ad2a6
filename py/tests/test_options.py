"""Options: each one accepted, bad types and values refused; then end to end: both transports,
h2c, HTTPS with a CA file (HTTP/2 by ALPN), mutual TLS, HTTP and SOCKS5 proxies, a JSON body."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import Server
from eventsource_native import (
    CLOSED,
    CONNECTING,
    DEFAULT_USER_AGENT,
    ErrorEvent,
    EventSource,
    InvalidOptionError,
    MessageEvent,
    __version__,
)

NOWHERE = "http://127.0.0.1:9/"  # never contacted: these sources fail or are closed at once
TRANSPORTS = ["default", "lean"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_redirects": 0},
        {"max_redirects": 2**70},  # beyond usize: no practical limit
        {"backoff": 1},
        {"backoff": 1.5},
        {"proxy": None},
        {"proxy": "http://127.0.0.1:1"},
        {"proxy": "socks5h://user:pw@127.0.0.1:1"},
        {"ca_certs": None},
        {"accept_invalid_certs": True},
        {"client_cert": None, "client_key": None},
        {"transport": "default"},
        {"transport": "lean"},
        {"transport": "LEAN"},
        {"http2_prior_knowledge": True},
        {"reconnect": None},
        {"reconnect": True},
        {"reconnect": False},
        {"max_reconnects": None},
        {"max_reconnects": 0},
        {"max_reconnects": 2**32 - 1},
        {"retry_initial": False},
        {"user_agent": None},
        {"user_agent": "my-agent/1.0"},
        {"max_error_body": 0},
        {"max_error_body": 2**80},
        {"json": None},
        {"json": [1, "é", {"a": None}]},
    ],
)
def test_accepted_options(kwargs: dict[str, Any]) -> None:
    es = EventSource(NOWHERE, **kwargs)
    es.close()


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"max_redirects": -1}, ValueError),
        ({"max_redirects": 1.0}, TypeError),
        ({"max_redirects": True}, TypeError),
        ({"backoff": 0.5}, ValueError),
        ({"backoff": float("nan")}, ValueError),
        ({"backoff": float("inf")}, ValueError),
        ({"backoff": 10**400}, ValueError),
        ({"backoff": "2"}, TypeError),
        ({"backoff": True}, TypeError),
        ({"proxy": 1}, TypeError),
        ({"proxy": b"http://127.0.0.1:1"}, TypeError),
        ({"ca_certs": 1}, TypeError),
        ({"ca_certs": b"/ca.pem"}, TypeError),
        ({"accept_invalid_certs": 1}, TypeError),
        ({"accept_invalid_certs": None}, TypeError),
        ({"client_cert": 1}, TypeError),
        ({"client_cert": "c.pem", "client_key": 2}, TypeError),
        ({"transport": None}, TypeError),
        ({"transport": 1}, TypeError),
        ({"http2_prior_knowledge": 1}, TypeError),
        ({"http2_prior_knowledge": None}, TypeError),
        ({"reconnect": 1}, TypeError),
        ({"reconnect": "yes"}, TypeError),
        ({"max_reconnects": -1}, ValueError),
        ({"max_reconnects": 2**32}, ValueError),
        ({"max_reconnects": 1.5}, TypeError),
        ({"max_reconnects": True}, TypeError),
        ({"retry_initial": None}, TypeError),
        ({"retry_initial": 0}, TypeError),
        ({"user_agent": 1}, TypeError),
        ({"user_agent": b"agent"}, TypeError),
        ({"max_error_body": -1}, ValueError),
        ({"max_error_body": 1.0}, TypeError),
        ({"max_event_size": True}, TypeError),
        ({"json": object()}, TypeError),
        ({"json": {"x": float("nan")}}, ValueError),
        ({"json": {"a": 1}, "body": "x"}, TypeError),
        ({"json": [], "body": b""}, TypeError),
    ],
)
def test_bad_option_types_and_values(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        EventSource(NOWHERE, **kwargs)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"transport": "fast"}, "transport"),
        ({"proxy": "not a proxy url"}, ""),
        ({"ca_certs": "/nonexistent/es-ca.pem"}, "/nonexistent/es-ca.pem"),
        ({"client_cert": "/nonexistent/es-client.pem"}, "/nonexistent/es-client.pem"),
        ({"client_key": "/nonexistent/es-client.key"}, "client_key"),  # without client_cert
    ],
)
def test_options_the_core_refuses(transport: str, kwargs: dict[str, Any], says: str) -> None:
    kwargs = {"transport": transport, **kwargs}
    with pytest.raises(InvalidOptionError) as info:
        EventSource(NOWHERE, **kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "invalid_option"
    assert says in info.value.message


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"http2_prior_knowledge": True}, "http2_prior_knowledge"),
        ({"proxy": "socks5://127.0.0.1:1"}, "socks5"),
    ],
)
def test_what_the_lean_transport_cannot_do(kwargs: dict[str, Any], says: str) -> None:
    EventSource(NOWHERE, **kwargs).close()  # the default transport can
    with pytest.raises(InvalidOptionError) as info:
        EventSource(NOWHERE, transport="lean", **kwargs)
    assert says in info.value.message


def test_default_user_agent() -> None:
    assert DEFAULT_USER_AGENT == f"eventsource-native/{__version__}"


def test_paths_may_be_path_like(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(InvalidOptionError) as info:
        EventSource(NOWHERE, ca_certs=missing)
    assert str(missing) in info.value.message


# ---------------------------------------------------------------------------------------------
# End to end.


def stream(url: str, **kwargs: Any) -> list[tuple[str, str, str]]:
    """Iterates a source to its end: (type, data, last_event_id) of each message."""
    with EventSource(url, retry=0.05, **kwargs) as es:
        return [(ev.type, ev.data, ev.last_event_id) for ev in es]


BODY = "id: 1\ndata: a\n\nevent: e\ndata: b\n\n"
EVENTS = [("message", "a", "1"), ("e", "b", "1")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_both_transports_stream(server: Server, transport: str) -> None:
    t = server.token(transport)
    assert stream(server.script(t, c1=BODY), transport=transport) == EVENTS
    log = server.log(t)
    assert [r["version"] for r in log] == ["HTTP/1.1", "HTTP/1.1"]  # the stream, then 204


def test_http2_prior_knowledge(server: Server) -> None:
    t = server.token()
    assert stream(server.script(t, c1=BODY), http2_prior_knowledge=True) == EVENTS
    assert [r["version"] for r in server.log(t)] == ["HTTP/2.0", "HTTP/2.0"]


@pytest.mark.parametrize("transport, version", [("default", "HTTP/2.0"), ("lean", "HTTP/1.1")])
def test_https_with_ca_certs(full_server: Server, transport: str, version: str) -> None:
    # Over TLS the default transport negotiates HTTP/2 by ALPN; the lean one speaks HTTP/1.1.
    s = full_server
    t = s.token()
    url = s.script(t, c1=BODY).replace(s.base, s.lines["tls"])
    assert stream(url, ca_certs=Path(s.lines["ca-cert"]), transport=transport) == EVENTS
    log = s.log(t)
    assert [(r["version"], r["tls"]) for r in log] == [(version, True)] * 2


def first_events(url: str, n: int, **kwargs: Any) -> list[Any]:
    """The first n events of any kind a source delivers to its listeners (then closes it)."""
    got: list[Any] = []
    done = threading.Event()
    es = EventSource(url, retry=0.05, **kwargs)

    def on(ev: Any) -> None:
        got.append(ev)
        if len(got) >= n:
            done.set()

    es.onopen = es.onmessage = es.onerror = on
    assert done.wait(10), got
    es.close()
    return got[:n]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_https_without_the_ca_is_refused(full_server: Server, transport: str) -> None:
    s = full_server
    url = s.script(s.token(), c1=BODY).replace(s.base, s.lines["tls"])
    (err,) = first_events(url, 1, transport=transport)
    assert isinstance(err, ErrorEvent), err
    assert err.ready_state == CONNECTING and err.kind == "connect", err
    assert "certificate" in err.message.lower(), err.message


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_accept_invalid_certs(full_server: Server, transport: str) -> None:
    s = full_server
    url = s.script(s.token(), c1=BODY).replace(s.base, s.lines["tls"])
    assert stream(url, accept_invalid_certs=True, transport=transport) == EVENTS


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("key_in_cert_file", [False, True])
def test_mutual_tls(
    full_server: Server, tmp_path: Path, transport: str, key_in_cert_file: bool
) -> None:
    s = full_server
    t = s.token()
    url = s.script(t, c1=BODY).replace(s.base, s.lines["mtls"])
    cert, key = s.lines["client-cert"], s.lines["client-key"]
    if key_in_cert_file:
        both = tmp_path / "client-and-key.pem"
        both.write_text(Path(cert).read_text() + Path(key).read_text())
        tls: dict[str, Any] = {"client_cert": both}
    else:
        tls = {"client_cert": cert, "client_key": key}
    assert stream(url, ca_certs=s.lines["ca-cert"], transport=transport, **tls) == EVENTS
    assert [r["client_cert"] for r in s.log(t)] == [True, True]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mutual_tls_refused_without_a_client_certificate(
    full_server: Server, transport: str
) -> None:
    s = full_server
    t = s.token()
    url = s.script(t, c1=BODY).replace(s.base, s.lines["mtls"])
    (err,) = first_events(url, 1, ca_certs=s.lines["ca-cert"], transport=transport)
    assert isinstance(err, ErrorEvent), err
    assert err.ready_state == CONNECTING, err
    assert err.kind in ("connect", "network"), err
    assert s.log(t) == []  # no request got through


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_http_proxy(full_server: Server, transport: str) -> None:
    s = full_server
    t = s.token()
    user = f"u-{t}"  # tags this test's entries in the shared proxy log
    proxy = s.lines["http-proxy"].replace("http://", f"http://{user}:pw@")
    url = s.script(t, c1=BODY)
    assert stream(url, proxy=proxy, transport=transport) == EVENTS
    entries = s.proxy_log(user)
    assert len(entries) == 2, entries  # the stream and the reconnection
    for e in entries:
        assert e["kind"] == "http" and e["allowed"] is True, e
        assert e["request"].startswith(f"GET {s.base}/script?t={t}&"), e
        assert e["password"] == "pw", e


def test_socks5_proxy(full_server: Server) -> None:
    s = full_server
    t = s.token()
    user = f"u-{t}"
    proxy = s.lines["socks5-proxy"].replace("socks5://", f"socks5://{user}:pw@")
    assert stream(s.script(t, c1=BODY), proxy=proxy) == EVENTS
    entries = s.proxy_log(user)
    target = s.base.removeprefix("http://")
    assert entries and all(
        e["kind"] == "socks5" and e["request"] == f"CONNECT {target}" and e["status"] == 0
        for e in entries
    ), entries
    assert len(s.log(t)) == 2


# ---------------------------------------------------------------------------------------------
# JSON.


def test_json_body_sets_the_content_type(server: Server) -> None:
    t = server.token()
    payload = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "stream": True}
    assert stream(server.script(t, c1="data: x\n\n"), method="POST", json=payload) == [
        ("message", "x", "")
    ]
    req = server.log(t)[0]
    assert req["method"] == "POST"
    assert json.loads(req["body"]) == payload
    assert req["headers"]["content-type"] == "application/json"


def test_json_keeps_a_content_type_the_user_gave(server: Server) -> None:
    t = server.token()
    ct = "application/vnd.api+json; charset=utf-8"
    stream(server.script(t, c1="data: x\n\n"), method="POST", json=[1], headers={"CONTENT-TYPE": ct})
    req = server.log(t)[0]
    assert req["body"] == "[1]"
    assert req["headers"]["content-type"] == ct


def test_message_event_json(server: Server) -> None:
    url = server.script(server.token(), c1='data: {"a": [1, 2],\ndata:  "b": "é"}\n\ndata: nope\n\n')
    with EventSource(url) as es:
        first, second = list(es)
    assert first.json() == {"a": [1, 2], "b": "é"}
    with pytest.raises(json.JSONDecodeError) as info:
        second.json()
    assert isinstance(info.value, ValueError)
    assert MessageEvent(data="[null, true]").json() == [None, True]



@pytest.mark.parametrize("transport", TRANSPORTS)
def test_response_timeout_fails_a_server_that_never_answers(server: Server, transport: str) -> None:
    t = server.token()
    url = server.url(f"scenario/no-answer?t={t}")
    errs = first_events(url, 2, response_timeout=0.2, transport=transport)
    for err in errs:
        assert isinstance(err, ErrorEvent), err
        assert err.ready_state == CONNECTING and err.kind == "timeout", err
        assert "response_timeout" in err.message, err.message
    for bad, exc in [("1", TypeError), (-1.0, ValueError)]:
        with pytest.raises(exc):
            EventSource(url, response_timeout=bad)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_https_to_http_redirect_is_refused_unless_allowed(
    full_server: Server, transport: str
) -> None:
    s = full_server
    ca = Path(s.lines["ca-cert"])

    def redirect(t: str) -> str:
        target = s.script(t, c1=BODY)  # plain http
        return s.script(t + "x", s1="302", loc1=target).replace(s.base, s.lines["tls"])

    t = s.token()
    (err,) = first_events(redirect(t), 1, ca_certs=ca, transport=transport)
    assert isinstance(err, ErrorEvent) and err.kind == "unsupported_scheme", err
    assert err.ready_state == CLOSED and "https to plain http" in err.message, err.message
    assert s.log(t) == []
    t = s.token()
    got = stream(redirect(t), ca_certs=ca, transport=transport, allow_https_downgrade=True)
    assert got == EVENTS
    with pytest.raises(TypeError):
        EventSource(redirect(t), allow_https_downgrade="yes")
