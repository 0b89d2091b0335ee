"""``/v1/keys`` (admin): create, list, bind to hotels and revoke API keys over the API; a secret is shown
once, on create. Hotel ids must be in the served hotels catalogue (when one is served)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_analytics.serving.auth import require
from crm_analytics.serving.booking_rules import BookingRules, hotel_list_enum
from crm_analytics.serving.keys import ApiKey, KeyStore
from crm_analytics.serving.problems import ProblemError, problem_responses, require_json
from crm_analytics.serving.schemas import Strict

router = APIRouter(prefix="/v1/keys", tags=["admin"])
Admin = Annotated[ApiKey, Depends(require("keys"))]
Role = Literal["marketing", "booking", "analyst", "admin"]  # keys.ROLES (a test keeps them equal)


HotelId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[!-+\--~]+$")]  # no commas


def _key_request_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [{"name": "pms-london", "roles": ["booking"]}]
    hotel_list_enum(schema)


class KeyRequest(Strict):
    model_config = ConfigDict(json_schema_extra=_key_request_schema)

    name: str = Field(max_length=64, pattern=r"^[!-~][ -~]*$", description="Printable ASCII.")
    roles: list[Role] = Field(min_length=1, max_length=4)
    hotels: list[HotelId] | None = Field(
        None, min_length=1, max_length=1000, description="The only hotels it may book for; omitted: all."
    )


class HotelsRequest(Strict):
    model_config = ConfigDict(json_schema_extra=hotel_list_enum)

    hotels: list[HotelId] = Field(min_length=1, max_length=1000)


class KeyInfo(BaseModel):
    """A key's public record: never its secret."""

    key_id: str
    name: str
    roles: list[str]
    created_at: datetime
    revoked_at: datetime | None
    hotels: list[str] | None = Field(description="The hotels it may book for; null: every hotel.")


class CreatedKey(KeyInfo):
    secret: str = Field(description="Shown this once; only its hash is stored.")


def _info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        key_id=key.key_id,
        name=key.name,
        roles=list(key.roles),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        hotels=sorted(key.hotels) if key.hotels is not None else None,
    )


def _known_hotels(request: Request, hotels: list[str] | None) -> list[str] | None:
    """``hotels``, each checked against the served catalogue: 422 naming the field otherwise."""
    rules: BookingRules = request.app.state.booking_rules
    if rules.unknown_hotels(hotels or ()):
        raise ProblemError(422, "Unprocessable Content", "hotels: not a hotel of the hotels catalogue")
    return hotels


def _store(request: Request) -> KeyStore:
    store: KeyStore = request.app.state.key_store
    return store


@router.post("", response_model=CreatedKey, status_code=201, dependencies=[Depends(require_json)])
def post_key(body: KeyRequest, request: Request, _key: Admin) -> CreatedKey:
    """A new key for ``roles``; its secret is in this answer only."""
    key, secret = _store(request).create(body.name, body.roles, _known_hotels(request, body.hotels))
    return CreatedKey(**_info(key).model_dump(), secret=secret)


@router.get("", response_model=list[KeyInfo])
def get_keys(request: Request, _key: Admin) -> list[KeyInfo]:
    """Every key, revoked ones included, oldest first."""
    return [_info(key) for key in _store(request).list()]


@router.put(
    "/{key_id}/hotels",
    response_model=KeyInfo,
    dependencies=[Depends(require_json)],
    responses=problem_responses(404),
)
def put_key_hotels(
    key_id: Annotated[str, Path(pattern=r"^k_[0-9a-f]{8}$")],
    body: HotelsRequest,
    request: Request,
    _key: Admin,
) -> KeyInfo:
    """Bind a key to these hotels (replacing any earlier binding): it answers for bookings there only."""
    try:
        return _info(_store(request).bind(key_id, _known_hotels(request, body.hotels) or []))
    except LookupError:
        raise ProblemError(404, "Not Found", "no such key") from None


@router.delete("/{key_id}", response_model=KeyInfo, responses=problem_responses(404))
def delete_key(
    key_id: Annotated[str, Path(pattern=r"^k_[0-9a-f]{8}$")], request: Request, _key: Admin
) -> KeyInfo:
    """Revoke a key for good (this worker at once, the others within their key cache time)."""
    try:
        return _info(_store(request).revoke(key_id))
    except LookupError:
        raise ProblemError(404, "Not Found", "no such key") from None
