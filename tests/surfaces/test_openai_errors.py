"""Every error path answers in OpenAI's error JSON with the right status, never a traceback."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from meterline.settings import ProviderSettings, ServerSettings, TimeoutSettings
from meterline.sim import Fault, OpenAISim, SimSettings
from tests.conftest import UPSTREAM_KEY, make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, free_port, start_gateway

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
        yield client


def _post(live: LiveGateway, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=10,
    )


def _assert_openai_error(resp: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == kind
    assert "Traceback" not in error["message"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"", "body", "empty"),
        (b"[1, 2]", "body", "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "model"),
        (b'{"model": "gpt-4o-mini"}', "messages", "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}',
         "messages[0].role", "role"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], '
         b'"temperature": "hot"}', "temperature", "number"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"text": "x"}]}]}',
         "messages[0].content[0].type", "needs a 'type'"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_naming_the_field(
    live: LiveGateway, body: bytes, param: str, fragment: str
) -> None:
    error = _assert_openai_error(_post(live, body), 400, "invalid_request_error")
    assert error["param"] == param
    assert fragment in str(error["message"])


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=USER)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"
    assert info.value.response.headers["x-meterline-request-id"]


def test_upstream_429_stays_429_with_its_retry_after(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    # retry-after 30 s exceeds backoff_max, so the gateway hands the 429 straight back.
    openai_sim.fail_next(Fault("http", 429, retry_after=30))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "30"
    assert info.value.code == "rate_limit_exceeded"
    assert len(openai_sim.received) == 1


def test_retryable_failures_are_retried_then_succeed(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    openai_sim.fail_next(Fault("http", 500), Fault("http", 429, retry_after=0.05))
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    assert len(openai_sim.received) == 3


def test_upstream_5xx_after_retries_is_502_with_upstream_message(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    openai_sim.fail_next(*[Fault("http", 503, message="engine overloaded today")] * 3)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert "engine overloaded today" in info.value.message
    assert len(openai_sim.received) == 3


def test_streaming_upstream_error_before_first_byte_is_a_real_http_error(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    openai_sim.fail_next(*[Fault("http", 500)] * 3)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == 502


def test_body_over_the_limit_is_413(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        openai_sim,
        server=ServerSettings(max_body_bytes=2048),
    )
    live = start_gateway(bg, settings)
    try:
        big = (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
            + b"x" * 4096
            + b'"}]}'
        )
        _assert_openai_error(_post(live, big), 413, "invalid_request_error")
        small = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        assert _post(live, small).status_code == 200
    finally:
        live.stop()


@pytest.fixture
def slow_live(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        openai_sim,
        timeout=TimeoutSettings(connect=1, first_byte=0.5, total=5),
    )
    live = start_gateway(bg, settings)
    yield live
    live.stop()


def test_upstream_timeout_is_504(slow_live: LiveGateway, openai_sim: OpenAISim) -> None:
    openai_sim.fail_next(Fault("hang"))
    resp = _post(
        slow_live, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}'
    )
    _assert_openai_error(resp, 504, "timeout_error")


def test_unreachable_upstream_is_502(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    dead = ProviderSettings(name="openai", type="openai",
                            base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x")  # fmt: skip
    settings = dataclasses.replace(
        make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", openai_sim), providers=(dead,)
    )
    live = start_gateway(bg, settings)
    try:
        resp = _post(
            live, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}'
        )
        error = _assert_openai_error(resp, 502, "upstream_error")
        assert "could not reach openai" in str(error["message"])
    finally:
        live.stop()


def test_rejected_upstream_credentials_are_502_not_the_clients_fault(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    wrong = ProviderSettings(name="openai", type="openai", base_url=openai_sim.base_url,
                             api_key="sk-wrong")  # fmt: skip
    settings = dataclasses.replace(
        make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", openai_sim), providers=(wrong,)
    )
    live = start_gateway(bg, settings)
    try:
        resp = _post(
            live, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}'
        )
        error = _assert_openai_error(resp, 502, "upstream_auth_error")
        assert "Incorrect API key" in str(error["message"])
        assert UPSTREAM_KEY not in str(error["message"])
    finally:
        live.stop()


def test_mid_stream_failure_ends_the_stream_with_an_error_event(
    client: openai.OpenAI, openai_sim: OpenAISim, live: LiveGateway
) -> None:
    openai_sim.fail_next(Fault("drop_mid_stream"))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received, "the chunks sent before the failure reach the client"
    live.flush()
    rows = live.call(lambda g: __import__("meterline.store", fromlist=["x"]).recent_requests(
        g.engine, limit=1, offset=0))  # fmt: skip
    assert rows[0]["status"] == "error"


def test_client_disconnect_cancels_the_upstream_and_logs_what_was_used(
    bg: BackgroundLoop, tmp_path: Path
) -> None:
    slow = OpenAISim(SimSettings(api_key=UPSTREAM_KEY, per_token=0.05))
    bg.run(slow.start())
    live = start_gateway(bg, make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", slow))
    try:
        body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, timeout=10) as resp:
            lines = resp.iter_lines()
            assert next(lines).startswith("data: ")
            # leaving the block closes the connection mid-stream
        for _ in range(100):
            if slow.cancelled_streams:
                break
            bg.run(asyncio.sleep(0.02))
        assert slow.cancelled_streams == 1 and slow.completed_streams == 0
        live.flush()
        from meterline.store import recent_requests

        rows = live.call(lambda g: recent_requests(g.engine, limit=1, offset=0))
        assert rows[0]["status"] == "cancelled"
        assert rows[0]["usage_estimated"] is True
        assert rows[0]["input_tokens"] > 0
    finally:
        live.stop()
        bg.run(slow.stop())
