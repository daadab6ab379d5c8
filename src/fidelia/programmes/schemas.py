from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fidelia.examples import examples
from fidelia.kit.bounds import LocaleTag
from fidelia.programmes import examples as ex

UnknownMemberPolicy = Literal["reject", "enrol_prospect"]


class MergePolicy(BaseModel):
    """How the programme joins two records of one person (see docs/profiles.md)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=examples({"on_sure_match": "merge"})
    )

    on_sure_match: Literal["reject", "merge"] = Field(
        default="reject",
        description="When an enrolment or an event names identities of two members, or an "
        "enrolment surely matches a member (same email or phone, or same name, birth date and "
        "postal code): refuse it (409), or merge the newer member into the older one",
    )


class PrivacyPolicy(BaseModel):
    """How long the programme keeps the personal data of closed members (docs/privacy.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples({"retention_months": 36}))

    retention_months: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="Erase the personal data of members closed for more than this many months "
        "(the daily retention job); null keeps it until an erasure request",
    )


RouteClass = Literal["read", "write", "bulk"]


class RateLimit(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra=examples({"per_second": 100, "burst": 300})
    )

    per_second: float = Field(
        gt=0, le=100_000, allow_inf_nan=False, description="Tokens added per second"
    )
    burst: int = Field(ge=1, le=1_000_000, description="Bucket size: requests allowed at once")


def _default_limits() -> dict[RouteClass, RateLimit]:
    return {
        "read": RateLimit(per_second=1000, burst=2000),
        "write": RateLimit(per_second=1000, burst=2000),
        "bulk": RateLimit(per_second=20, burst=100),
    }


_ORIGIN = r"^(https://[a-z0-9.-]+(:[0-9]{1,5})?|http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?)$"


class ApiPolicy(BaseModel):
    """Rate limits per API key and route class, and the portal hosts allowed by CORS
    (docs/limits.md)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=examples(
            {
                "rate_limits": {"read": {"per_second": 100, "burst": 300}},
                "cors_origins": ["https://club.example.com"],
            }
        ),
    )

    rate_limits: dict[RouteClass, RateLimit] = Field(
        default_factory=_default_limits,
        max_length=3,
        description="Token bucket per API key for each route class: read (GET), write (other "
        "methods), bulk (batches, imports, exports); a class left out is not limited",
    )
    cors_origins: list[Annotated[str, Field(pattern=_ORIGIN, max_length=200)]] = Field(
        default_factory=list,
        max_length=20,
        description="Origins (https://host[:port], or http://localhost) whose browser pages may "
        "call the API with this programme's keys",
    )


class ProgrammeSettings(BaseModel):
    """Policies of a programme, stored as JSON on the programme row."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SETTINGS))

    unknown_member: UnknownMemberPolicy = Field(
        default="reject",
        description="What intake does with an event for an identity nobody has: reject it, "
        "or enrol a prospect member with that identity",
    )
    merge: MergePolicy = Field(
        default_factory=MergePolicy, description="Joining two records of one person"
    )
    privacy: PrivacyPolicy = Field(
        default_factory=PrivacyPolicy, description="Retention (docs/privacy.md)"
    )
    api: ApiPolicy = Field(
        default_factory=ApiPolicy,
        description="Rate limits and CORS origins of the API (docs/limits.md)",
    )


class ProgrammeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(default="EUR", description="ISO 4217 code")
    timezone: str = Field(default="Europe/Paris", description="IANA time zone")
    locale: str = Field(default="fr-FR", description="BCP 47 language tag, e.g. fr-FR")
    country: str = Field(default="FR", description="ISO 3166-1 alpha-2; default phone region")
    settings: ProgrammeSettings = Field(default_factory=ProgrammeSettings)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.upper()
        if pycountry.currencies.get(alpha_3=value) is None:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        value = value.upper()
        if pycountry.countries.get(alpha_2=value) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return validate_locale(value)


def validate_locale(value: str) -> str:
    """Accept ``ll`` or ``ll-CC`` (ISO 639 language, ISO 3166 country); normalise the case."""
    parts = value.replace("_", "-").split("-")
    language = parts[0].lower()
    ok = len(parts) <= 2 and pycountry.languages.get(alpha_2=language) is not None
    if ok and len(parts) == 2:
        ok = pycountry.countries.get(alpha_2=parts[1].upper()) is not None
    if not ok:
        raise ValueError(f"{value!r} is not a locale such as 'fr' or 'fr-FR'")
    return language if len(parts) == 1 else f"{language}-{parts[1].upper()}"


class ProgrammeUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.UPDATE)
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: LocaleTag | None = None
    settings: ProgrammeSettings | None = None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return None if value is None else validate_locale(value)


class ProgrammeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.PROGRAMME))

    id: uuid.UUID
    slug: str
    name: str
    currency: str
    timezone: str
    locale: str
    country: str
    settings: ProgrammeSettings
    created_at: datetime
