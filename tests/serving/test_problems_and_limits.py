"""Problem bodies (RFC 9457) for every error, the body size limit and the token buckets of the rate limits."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import pytest
import redis
from fastapi import Body, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict
from starlette.types import Message, Receive, Scope, Send

from crm_analytics.serving.limits import BodyLimitMiddleware, TokenBuckets
from crm_analytics.serving.problems import ProblemError, install_problem_handlers, require_json
from crm_analytics.serving.shared_limits import SharedBuckets

if TYPE_CHECKING:  # the TestClient runs on httpx2 (Starlette >= 1.10) or, deprecated, httpx
    from httpx2 import Response

PERSONAL = "jane.doe@example.com"
REDIS_URL = "redis://127.0.0.1:6379/0"  # the machine's Redis (as in CI)


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """Status first, then the problem+json shape; returns the body."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert "instance" not in body or "{" in body["instance"] or body["instance"] == response.request.url.path
    assert body["status"] == status
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return dict(body)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    customer_id: int
    amount: float


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/orders", dependencies=[Depends(require_json)])
    def post_order(order: Order) -> dict[str, float]:
        return {"amount": order.amount}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"lookup failed for {PERSONAL}")

    @app.get("/teapot")
    def teapot() -> None:
        raise ProblemError(418, "Teapot", "Short and stout.", type_suffix="teapot", headers={"X-Pot": "1"})

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


def post_json(client: TestClient, text: str) -> Response:
    return client.post("/orders", content=text.encode(), headers={"Content-Type": "application/json"})


# --- problems -------------------------------------------------------------------------------------


def test_post_order_valid_is_200(client: TestClient) -> None:
    response = client.post("/orders", json={"customer_id": 7, "amount": 12.5})

    assert response.status_code == 200
    assert response.json() == {"amount": 12.5}


def test_get_unknown_path_is_404_problem(client: TestClient) -> None:
    response = client.get("/nope")

    body = assert_problem(response, 404)
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
    }  # no route matched: no instance (the raw path is the caller's input)


def test_delete_orders_is_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/orders")

    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_get_teapot_problem_error_keeps_type_and_headers(client: TestClient) -> None:
    response = client.get("/teapot")

    body = assert_problem(response, 418)
    assert body["type"] == "https://crm-analytics.invalid/problems/teapot"
    assert body["detail"] == "Short and stout."
    assert response.headers["x-pot"] == "1"


def test_post_order_wrong_type_is_422_without_echo(client: TestClient) -> None:
    response = client.post("/orders", json={"customer_id": PERSONAL, "amount": "Jane's card"})

    body = assert_problem(response, 422)
    assert str(body["type"]).endswith("/validation-error")
    assert {e["field"] for e in body["errors"]} == {"body.customer_id", "body.amount"}
    assert all(e.keys() == {"field", "message"} for e in body["errors"])
    assert PERSONAL not in response.text
    assert "Jane" not in response.text


def test_post_order_unknown_fields_are_422_and_masked(client: TestClient) -> None:
    payload = {"customer_id": 1, "amount": 2.0, "nickname": "Janey", PERSONAL: "x"}

    response = client.post("/orders", json=payload)

    body = assert_problem(response, 422)
    assert sorted(e["field"] for e in body["errors"]) == ["body.*", "body.nickname"]
    assert PERSONAL not in response.text
    assert "Janey" not in response.text


def test_post_order_missing_fields_is_422(client: TestClient) -> None:
    response = client.post("/orders", json={})

    body = assert_problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"body.customer_id", "body.amount"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 400])
def test_post_order_non_finite_amount_is_422(client: TestClient, number: str) -> None:
    response = post_json(client, f'{{"customer_id": 1, "amount": {number}}}')

    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "body.amount"
    assert number not in response.text
    assert "NaN" not in response.text
    assert "Infinity" not in response.text


def test_post_order_integer_beyond_parser_limit_is_400(client: TestClient) -> None:
    response = post_json(client, '{"customer_id": 1' + "0" * 5000 + ', "amount": 1}')

    body = assert_problem(response, 400)
    assert "0000" not in response.text
    assert body["instance"] == "/orders"


@pytest.mark.parametrize("text", ['{"customer_id": 1,', '{"customer_id": ' + PERSONAL + "}", "\xff{"])
def test_post_order_malformed_json_is_400(client: TestClient, text: str) -> None:
    response = post_json(client, text)

    body = assert_problem(response, 400)
    assert body["type"] == "https://crm-analytics.invalid/problems/malformed-json"
    assert body["detail"] == "The request body is not valid JSON."
    assert PERSONAL not in response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_post_order_non_json_content_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.post("/orders", content=json.dumps({"customer_id": 1, "amount": 2}), headers=headers)

    body = assert_problem(response, 415)
    assert str(body["type"]).endswith("/unsupported-media-type")


def test_post_order_json_with_charset_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/orders",
        content=b'{"customer_id": 1, "amount": 2}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200


def test_get_boom_is_500_without_details(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    response = client.get("/boom")

    body = assert_problem(response, 500)
    assert body["detail"] == "The server could not complete the request."
    assert "RuntimeError" not in response.text
    assert PERSONAL not in response.text
    errors = [r for r in caplog.records if r.name == "crm_analytics.serving" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "RuntimeError" in errors[0].getMessage()
    assert "/boom" in errors[0].getMessage()  # the route template
    assert PERSONAL not in caplog.text


# --- body limit -----------------------------------------------------------------------------------


def make_limited_app(max_bytes: int, seen: list[int]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)

    @app.post("/echo-size")
    def echo_size(payload: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        seen.append(len(json.dumps(payload)))
        return {"keys": len(payload)}

    return app


def chunks(total: int, size: int = 10) -> Iterator[bytes]:
    """A JSON body of exactly ``total`` bytes, sent in pieces (so without Content-Length)."""
    text = ('{"k": "' + "x" * (total - 9) + '"}').encode()
    assert len(text) == total
    for start in range(0, total, size):
        yield text[start : start + size]


def test_post_body_over_limit_with_content_length_is_413() -> None:
    seen: list[int] = []
    with TestClient(make_limited_app(100, seen)) as client:
        response = client.post("/echo-size", json={"k": "x" * 200})

    body = assert_problem(response, 413)
    assert response.request.headers["content-length"] == str(len(response.request.content))
    assert str(body["type"]).endswith("/body-too-large")
    assert "x" * 20 not in response.text
    assert seen == []


def test_post_chunked_body_over_limit_is_413() -> None:
    seen: list[int] = []
    with TestClient(make_limited_app(100, seen)) as client:
        response = client.post(
            "/echo-size", content=chunks(250), headers={"Content-Type": "application/json"}
        )

    assert_problem(response, 413)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert seen == []


def test_post_chunked_body_at_limit_passes() -> None:
    seen: list[int] = []
    with TestClient(make_limited_app(100, seen)) as client:
        response = client.post(
            "/echo-size", content=chunks(100), headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 200
    assert seen == [100]


def test_body_limit_stops_reading_a_stream_once_over() -> None:
    """Driven at the ASGI level: several body messages; the app must never be called."""
    messages: list[Message] = [
        {"type": "http.request", "body": b"x" * 40, "more_body": True} for _ in range(10)
    ]
    received = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1
        return messages[received - 1]

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not see an oversized body")

    scope: Scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    anyio.run(BodyLimitMiddleware(app, max_bytes=100), scope, receive, send)

    assert sent[0]["status"] == 413
    assert received == 3  # 40 + 40 + 40 > 100: the rest is never read
    assert json.loads(sent[1]["body"])["status"] == 413


# --- rate limit -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spends_the_burst_then_waits_for_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)

    assert [buckets.take_local("a"), buckets.take_local("a")] == [0.0, 0.0]
    assert buckets.take_local("a") == pytest.approx(1.0)
    assert buckets.take_local("b") == 0.0  # another caller, another bucket
    clock.now += 1.0
    assert buckets.take_local("a") == 0.0
    clock.now += 60.0  # a long pause refills only up to the burst
    assert [buckets.take_local("a") for _ in range(3)][2] > 0


def test_token_bucket_wait_follows_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=0.1, burst=1, clock=clock)
    assert buckets.take_local("a") == 0.0
    clock.now += 4.0
    assert buckets.take_local("a") == pytest.approx(6.0)


def test_token_buckets_forget_least_recent_callers_beyond_the_cap() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock, max_callers=2)

    assert buckets.take_local("a") == 0.0
    assert buckets.take_local("b") == 0.0
    assert buckets.take_local("a") == pytest.approx(1.0)
    assert buckets.take_local("c") == 0.0  # evicts "b", the least recently seen

    assert buckets.take_local("b") == 0.0
    assert len(buckets._buckets) == 2


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_token_buckets_reject_non_positive_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0 and burst >= 1"):
        TokenBuckets(rate, burst)


def shared_takes(url: str, prefix: str, callers: list[str], burst: int = 3) -> list[float]:
    """Two 'workers' (bucket sets) over one Redis, taking in turn for ``callers``."""

    async def run() -> list[float]:
        workers = [TokenBuckets(0.1, burst, shared=SharedBuckets(url, prefix=prefix)) for _ in range(2)]
        waits = [await workers[i % 2].take(caller) for i, caller in enumerate(callers)]
        for worker in workers:
            assert worker.shared is not None
            await worker.shared.close()
        return waits

    return anyio.run(run)


def test_workers_sharing_redis_spend_one_bucket() -> None:
    prefix = f"crm-test:{uuid.uuid4().hex}:"
    waits = shared_takes(REDIS_URL, prefix, ["key:k_1"] * 5 + ["key:k_2"])
    assert [w == 0 for w in waits] == [True, True, True, False, False, True]  # a burst of 3 in all
    stored = redis.Redis.from_url(REDIS_URL).keys(prefix + "*")
    assert sorted(stored) == sorted(f"{prefix}key:k_{i}".encode() for i in (1, 2))


def test_without_redis_each_worker_still_limits_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    async def run() -> list[float]:
        worker = TokenBuckets(0.1, 2, shared=SharedBuckets(unreachable, prefix="crm-test:"))
        return [await worker.take("key:k_1") for _ in range(3)]

    waits = anyio.run(run)
    assert [w == 0 for w in waits] == [True, True, False]
    assert "shared limits unavailable" in caplog.text
