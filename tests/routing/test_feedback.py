"""User feedback: ``/feedback`` in chat on both surfaces (answered by the gateway, never sent
upstream), ``POST /api/feedback``, and how a rating overrules what the router learned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.errors import InvalidRequest
from meterline.routing.feedback import USAGE, parse_command
from meterline.settings import RoutingSettings
from meterline.sim import OpenAISim
from tests.accounting.conftest import MASTER, admin, create_key
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

QUESTION = "What is the capital of France?"
CODE_ASK = "Implement a small Python helper that reverses a linked list."
NANO = "openai:gpt-4.1-nano"


# ---------------------------------------------------------------------------------------------
# parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/feedback good", (5, None)),
        ("/feedback bad", (1, None)),
        ("/feedback GOOD", (5, None)),
        ("  /feedback   Bad  \n", (1, None)),
        ("/feedback 1", (1, None)),
        ("/feedback 3", (3, None)),
        ("/feedback 5", (5, None)),
        ("/feedback good 3f2a", (5, "3f2a")),
        ("/feedback 2 3F2A9C0B", (2, "3f2a9c0b")),
        ("/feedback bad 0123456789abcdef01234567", (1, "0123456789abcdef01234567")),
        ("/FEEDBACK 4 abcd", (4, "abcd")),
    ],
)
def test_parse_command(text: str, expected: tuple[int, str | None]) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/feedback",
        "/feedback great",
        "/feedback 0",
        "/feedback 6",
        "/feedback 10",
        "/feedback good abc",  # an id prefix needs 4 characters
        "/feedback good xyz123",  # ids are hex
        "/feedback good 3f2a extra",
        "/feedback good " + "a" * 33,
        "/feedbackgood",
        "feedback good",
        "please /feedback good",
    ],
)
def test_parse_command_rejects_bad_input_with_the_usage(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_command(text)
    assert USAGE in caught.value.message and caught.value.param == "messages"


# ---------------------------------------------------------------------------------------------
# live


@pytest.fixture
def live(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> Iterator[LiveGateway]:
    settings = make_settings(f"sqlite:///{tmp_path / 'fb.db'}", openai_sim, compat_sim,
                             routing=RoutingSettings(exploration=0.0))  # fmt: skip
    gateway = start_gateway(bg, settings)
    yield gateway
    gateway.stop()


@pytest.fixture
def oai(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(live: LiveGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live.url, api_key="k", max_retries=0) as client:
        yield client


def _ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _row(live: LiveGateway, request_id: str) -> dict[str, Any]:
    live.flush()
    resp = httpx.get(f"{live.url}/api/requests", params={"limit": 200}, timeout=10)
    rows: list[dict[str, Any]] = resp.json()["data"]
    return next(r for r in rows if r["id"] == request_id)


def _auto(oai: openai.OpenAI, text: str = QUESTION) -> str:
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=_ask(text))
    return raw.headers["x-meterline-request-id"]


def _chat(oai: openai.OpenAI, command: str) -> str:
    completion = oai.chat.completions.create(model="auto", messages=_ask(command))
    text = completion.choices[0].message.content
    assert text is not None
    return text


def _record(live: LiveGateway, task: str, band: str, model: str = NANO) -> tuple[int, int]:
    record = live.gateway.stats.get(task, band, model)
    return record.successes, record.total


def test_feedback_bad_in_openai_chat(
    live: LiveGateway, oai: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    task = _auto(oai)
    assert _row(live, task)["success"] is True
    assert _record(live, "simple_qa", "low") == (1, 1)

    raw = oai.chat.completions.with_raw_response.create(
        model="auto", messages=_ask("/feedback bad")
    )
    completion = raw.parse()
    assert (
        completion.choices[0].message.content
        == f"Thanks! Task {task} (openai/gpt-4.1-nano) is now rated 1/5."
    )
    assert completion.choices[0].finish_reason == "stop"
    assert len(openai_sim.received) == 1  # the command never went upstream
    assert raw.headers["x-meterline-cache"] == "skip"

    row = _row(live, task)
    assert (row["rating"], row["success"]) == (1, False)
    assert _record(live, "simple_qa", "low") == (0, 1)  # the verdict was overruled, not added
    command = _row(live, raw.headers["x-meterline-request-id"])
    assert command["provider"] == "meterline" and command["cost_usd"] == "0"


def test_feedback_good_in_anthropic_chat(
    live: LiveGateway, claude: anthropic.Anthropic, openai_sim: OpenAISim
) -> None:
    first = claude.messages.with_raw_response.create(
        model="auto", max_tokens=300, messages=_ask(CODE_ASK)
    )
    task = first.headers["x-meterline-request-id"]
    assert _row(live, task)["success"] is False  # no code in the simulated answer
    assert _record(live, "code_gen", "low") == (0, 1)

    message = claude.messages.create(model="auto", max_tokens=100, messages=_ask("/feedback good"))
    assert message.content[0].type == "text"
    assert message.content[0].text == f"Thanks! Task {task} (openai/gpt-4.1-nano) is now rated 5/5."
    assert message.stop_reason == "end_turn"
    assert len(openai_sim.received) == 1

    row = _row(live, task)
    assert (row["rating"], row["success"]) == (5, True)
    assert _record(live, "code_gen", "low") == (1, 1)


def test_feedback_in_a_streamed_chat(
    live: LiveGateway, oai: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    task = _auto(oai)
    stream = oai.chat.completions.create(model="auto", messages=_ask("/feedback 4"), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"Thanks! Task {task} (openai/gpt-4.1-nano) is now rated 4/5."
    assert len(openai_sim.received) == 1
    assert _row(live, task)["rating"] == 4


def test_feedback_with_an_id_prefix_rates_that_earlier_request(
    live: LiveGateway, oai: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    first = _auto(oai, QUESTION)
    second = _auto(oai, "What is the capital of Spain?")
    answer = _chat(oai, f"/feedback 2 {first[-8:]}")  # the last characters: the random part
    assert answer == f"Thanks! Task {first} (openai/gpt-4.1-nano) is now rated 2/5."
    answer = _chat(oai, f"/feedback 2 {first[:16]}")  # or enough of its first ones
    assert answer == f"Thanks! Task {first} (openai/gpt-4.1-nano) is now rated 2/5."
    assert (_row(live, first)["rating"], _row(live, first)["success"]) == (2, False)
    assert (_row(live, second)["rating"], _row(live, second)["success"]) == (None, True)
    # with no id, the latest real request is rated (not the /feedback commands themselves)
    assert _chat(oai, "/feedback good").startswith(f"Thanks! Task {second} ")
    assert _chat(oai, "/feedback 5").startswith(f"Thanks! Task {second} ")
    assert len(openai_sim.received) == 2


def test_a_neutral_rating_is_stored_but_changes_no_verdict(
    live: LiveGateway, oai: openai.OpenAI
) -> None:
    task = _auto(oai)
    _chat(oai, "/feedback 3")
    assert (_row(live, task)["rating"], _row(live, task)["success"]) == (3, True)
    assert _record(live, "simple_qa", "low") == (1, 1)


def test_unknown_ids_and_bad_commands_get_a_friendly_answer(
    live: LiveGateway, oai: openai.OpenAI, claude: anthropic.Anthropic, openai_sim: OpenAISim
) -> None:
    assert _chat(oai, "/feedback good") == "Feedback not recorded: found no recent request to rate"
    task = _auto(oai)
    assert (
        _chat(oai, "/feedback good deadbeef")
        == "Feedback not recorded: found no task deadbeef to rate"
    )
    assert (
        _chat(oai, "/feedback splendid")
        == f"Feedback not recorded: could not read that feedback; {USAGE}"
    )
    message = claude.messages.create(model="auto", max_tokens=100, messages=_ask("/feedback 9"))
    assert message.content[0].type == "text"
    assert (
        message.content[0].text == f"Feedback not recorded: could not read that feedback; {USAGE}"
    )
    assert _row(live, task)["rating"] is None
    assert len(openai_sim.received) == 1


def test_post_api_feedback(live: LiveGateway, oai: openai.OpenAI) -> None:
    task = _auto(oai)
    url = f"{live.url}/api/feedback"
    resp = httpx.post(url, json={"taskId": task[-10:].upper(), "rating": 1}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "taskId": task,
        "provider": "openai",
        "model": "gpt-4.1-nano",
        "rating": 1,
    }
    assert (_row(live, task)["rating"], _row(live, task)["success"]) == (1, False)
    assert _record(live, "simple_qa", "low") == (0, 1)

    assert (
        httpx.post(url, json={"taskId": task, "rating": "good"}, timeout=10).json()["rating"] == 5
    )
    assert (_row(live, task)["rating"], _row(live, task)["success"]) == (5, True)
    assert _record(live, "simple_qa", "low") == (1, 1)
    whole = httpx.post(url, json={"taskId": task.upper(), "rating": 3}, timeout=10)
    assert whole.json()["taskId"] == task and _row(live, task)["rating"] == 3
    httpx.post(url, json={"taskId": task, "rating": 5}, timeout=10).raise_for_status()

    for body, status, param in [
        ({"taskId": task, "rating": 7}, 400, "rating"),
        ({"taskId": task, "rating": True}, 400, "rating"),
        ({"taskId": task, "rating": "meh"}, 400, "rating"),
        ({"taskId": "ab", "rating": 5}, 400, "taskId"),
        ({"taskId": "%%%%", "rating": 5}, 400, "taskId"),  # no pattern that matches every id
        ({"rating": 5}, 400, "taskId"),
        ({"taskId": "feedfacefeedface", "rating": 5}, 404, "taskId"),
    ]:
        resp = httpx.post(url, json=body, timeout=10)
        assert resp.status_code == status, (body, resp.text)
        assert resp.json()["error"]["param"] == param
    assert _row(live, task)["rating"] == 5


def test_feedback_changes_the_record_the_router_decides_on(
    live: LiveGateway, oai: openai.OpenAI
) -> None:
    for _ in range(19):
        live.gateway.stats.record("simple_qa", "low", NANO, True)
    task = _auto(oai)  # the 20th success: simple_qa/low now has history
    explain = f"{live.url}/api/routing/explain"
    before = httpx.get(explain, params={"prompt": QUESTION}, timeout=10).json()["route"]["reason"]
    assert (
        before == "openai/gpt-4.1-nano: cheapest economy, 100% success over 20 simple_qa requests"
    )

    httpx.post(f"{live.url}/api/feedback", json={"taskId": task, "rating": "bad"}, timeout=10)
    assert _record(live, "simple_qa", "low") == (19, 20)
    after = httpx.get(explain, params={"prompt": QUESTION}, timeout=10).json()["route"]["reason"]
    assert after == "openai/gpt-4.1-nano: cheapest economy, 95% success over 20 simple_qa requests"


def test_feedback_stays_within_the_callers_tenant(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'tenants.db'}", openai_sim, master_key=MASTER)
    live = start_gateway(bg, settings)
    try:
        acme = create_key(live, tenant="acme")["key"]
        globex = create_key(live, tenant="globex")["key"]
        with (
            openai.OpenAI(base_url=f"{live.url}/v1", api_key=acme, max_retries=0) as a,
            openai.OpenAI(base_url=f"{live.url}/v1", api_key=globex, max_retries=0) as g,
        ):  # fmt: skip
            mine = _auto(a)
            theirs = _auto(g, "What is the capital of Italy?")  # newer, another tenant
            assert _chat(a, "/feedback bad").startswith(f"Thanks! Task {mine} ")
            for short in (theirs[-12:], theirs[:16]):
                assert _chat(a, f"/feedback bad {short}") == (
                    f"Feedback not recorded: found no task {short} to rate"
                )
            api = httpx.post(f"{live.url}/api/feedback", json={"taskId": theirs, "rating": 1},
                             headers={"authorization": f"Bearer {acme}"}, timeout=10)  # fmt: skip
            assert api.status_code == 404
        live.flush()
        rows = {r["id"]: r for r in admin(live, "GET", "/api/requests").json()["data"]}
        assert rows[mine]["rating"] == 1 and rows[theirs]["rating"] is None
    finally:
        live.stop()
