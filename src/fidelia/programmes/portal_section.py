"""The ``portal`` section of a programme document: the member portal's white label.

Only data: names, colours (hex), file names of the logo, icons and fonts (served from the
programme's folder of the portal asset directory, never a URL to another site), legal texts,
the support contact, the default language and the host name the programme's own domain
answers on. The portal (a delivery layer) reads it; no Fidelia branding unless asked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Colour = Annotated[str, Field(max_length=7, pattern=r"^#[0-9A-Fa-f]{6}$")]
FileName = Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
Text = Annotated[str, Field(max_length=20_000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]


ProfileField = Literal["first_name", "last_name", "birth_date", "postal_code"]
PROFILE_FIELDS: tuple[ProfileField, ...] = ("first_name", "last_name", "birth_date", "postal_code")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Theme(Strict):
    primary: Colour = "#1f4e79"
    accent: Colour = "#c8102e"
    background: Colour = "#f6f7f9"
    surface: Colour = "#ffffff"
    text: Colour = "#1b1f24"
    font_family: Short | None = None
    font_files: list[FileName] = Field(default_factory=list, max_length=8)


class LegalPage(Strict):
    slug: Annotated[str, Field(max_length=40, pattern=r"^[a-z0-9-]{1,40}$")]
    title: Annotated[dict[Literal["fr", "en"], Short], Field(max_length=2)]
    text: Annotated[dict[Literal["fr", "en"], Text], Field(max_length=2)]


class Support(Strict):
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32)
    url: str | None = Field(default=None, max_length=500, pattern=r"^https://")


class PortalSection(Strict):
    name: Short | None = None
    short_name: Annotated[str, Field(min_length=1, max_length=30)] | None = None
    logo: FileName | None = None
    icon: FileName | None = Field(default=None, description="A square PNG, 512 px")
    theme: Theme = Field(default_factory=Theme)
    legal: list[LegalPage] = Field(default_factory=list, max_length=10)
    support: Support = Field(default_factory=Support)
    default_locale: Literal["fr", "en"] | None = None
    host: str | None = Field(
        default=None, max_length=253, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9-]+)+$"
    )
    point_value: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=10,
        decimal_places=6,
        description="Money value shown for a point (default: the points wallet's unit value)",
    )
    rule_labels: dict[
        Annotated[str, Field(max_length=100)],
        Annotated[dict[Literal["fr", "en"], Short], Field(max_length=2)],
    ] = Field(default_factory=dict, max_length=500, description="What members read per rule id")
    powered_by: bool = Field(default=False, description="Show 'Powered by Fidelia'")
    profile_fields: list[ProfileField] = Field(
        default_factory=lambda: list(PROFILE_FIELDS),
        max_length=len(PROFILE_FIELDS),
        description="What members may edit",
    )
