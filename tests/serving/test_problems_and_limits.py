"""Problem bodies (RFC 9457) for every error, the body size limit and the per-key rate limit."""

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

from crm_analytics.serving.limits import BodyLimitMiddleware, RateLimitMiddleware
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
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
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
        "instance": "/nope",
    }


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
    assert "/boom" in errors[0].getMessage()
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


def make_rate_limited_app(clock: FakeClock, per_minute: int = 60, burst: int = 2) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(
        RateLimitMiddleware, per_minute=per_minute, burst=burst, clock=clock, exempt_paths={"/health"}
    )

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def get_codes(
    client: TestClient, n: int, headers: dict[str, str] | None = None, path: str = "/ping"
) -> list[int]:
    return [client.get(path, headers=headers).status_code for _ in range(n)]


def test_get_ping_over_burst_is_429_with_retry_after() -> None:
    clock = FakeClock()
    with TestClient(make_rate_limited_app(clock)) as client:
        codes = get_codes(client, 2, {"X-API-Key": "crm_a"})
        response = client.get("/ping", headers={"X-API-Key": "crm_a"})

    assert codes == [200, 200]
    body = assert_problem(response, 429)
    assert response.headers["retry-after"] == "1"
    assert str(body["type"]).endswith("/rate-limited")
    assert "crm_a" not in response.text


def test_get_ping_retry_after_follows_the_rate() -> None:
    clock = FakeClock()
    with TestClient(make_rate_limited_app(clock, per_minute=6, burst=1)) as client:
        assert get_codes(client, 1, {"X-API-Key": "crm_a"}) == [200]
        clock.now += 4.0
        response = client.get("/ping", headers={"X-API-Key": "crm_a"})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "6"


def test_get_ping_keys_have_separate_buckets() -> None:
    clock = FakeClock()
    with TestClient(make_rate_limited_app(clock)) as client:
        first = get_codes(client, 3, {"X-API-Key": "crm_a"})
        second = get_codes(client, 3, {"Authorization": "Bearer crm_b"})
        same_secret_other_header = get_codes(client, 1, {"Authorization": "Bearer crm_a"})
        anonymous = get_codes(client, 3)

    assert first == [200, 200, 429]
    assert second == [200, 200, 429]
    assert same_secret_other_header == [429]
    assert anonymous == [200, 200, 429]


def test_get_ping_bucket_refills_over_time() -> None:
    clock = FakeClock()
    with TestClient(make_rate_limited_app(clock)) as client:
        assert get_codes(client, 3, {"X-API-Key": "crm_a"}) == [200, 200, 429]
        clock.now += 1.0
        assert get_codes(client, 2, {"X-API-Key": "crm_a"}) == [200, 429]
        clock.now += 60.0  # a long pause refills only up to the burst
        assert get_codes(client, 3, {"X-API-Key": "crm_a"}) == [200, 200, 429]


def test_get_health_is_exempt_from_the_limit() -> None:
    clock = FakeClock()
    with TestClient(make_rate_limited_app(clock, burst=1)) as client:
        assert get_codes(client, 5, path="/health") == [200] * 5


def test_rate_limit_forgets_least_recent_callers_beyond_the_cap() -> None:
    clock = FakeClock()
    limiter = RateLimitMiddleware(
        make_rate_limited_app(clock), per_minute=60, burst=1, clock=clock, max_callers=2
    )

    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("c") == 0.0  # evicts "b", the least recently seen

    assert limiter.take("b") == 0.0
    assert len(limiter._buckets) == 2


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (1, 0)])
def test_rate_limit_rejects_non_positive_settings(per_minute: int, burst: int) -> None:
    with pytest.raises(ValueError, match="per_minute and burst must be >= 1"):
        RateLimitMiddleware(FastAPI(), per_minute=per_minute, burst=burst)


def make_shared_app(url: str, prefix: str, per_minute: int = 6, burst: int = 3) -> FastAPI:
    """A 'worker' whose rate limit lives in Redis under ``prefix``."""
    app = FastAPI()
    install_problem_handlers(app)
    shared = SharedBuckets(url, prefix=prefix)
    app.add_middleware(RateLimitMiddleware, per_minute=per_minute, burst=burst, shared=shared)

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


def test_workers_sharing_redis_spend_one_bucket() -> None:
    prefix = f"crm-test:{uuid.uuid4().hex}:"
    key = {"X-API-Key": "crm_shared"}
    with (
        TestClient(make_shared_app(REDIS_URL, prefix)) as first,
        TestClient(make_shared_app(REDIS_URL, prefix)) as second,
    ):
        codes = [(first if i % 2 else second).get("/ping", headers=key).status_code for i in range(5)]
        other_key = second.get("/ping", headers={"X-API-Key": "crm_other"}).status_code
    assert codes == [200, 200, 200, 429, 429]  # a burst of 3 in all, not 3 per worker
    assert other_key == 200
    stored = redis.Redis.from_url(REDIS_URL).keys(prefix + "*")
    assert len(stored) == 2  # one bucket per caller, named by a hash of the key, never the key
    assert all(b"crm_shared" not in k for k in stored)


def test_without_redis_each_worker_still_limits_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with TestClient(make_shared_app(unreachable, "crm-test:", burst=2)) as client:
        codes = get_codes(client, 3, {"X-API-Key": "crm_a"})
    assert codes == [200, 200, 429]
    assert "shared rate limit unavailable" in caplog.text
