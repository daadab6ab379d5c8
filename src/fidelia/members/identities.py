"""Normalising identities so that one person is found whatever way their details were typed."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from fidelia.errors import ValidationFailed

CARD, EMAIL, PHONE, EXTERNAL = "card", "email", "phone", "external"


def normalise_email(value: str, *, loc: tuple[str | int, ...] = ("email",)) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed.on(loc, f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


def normalise_phone(value: str, *, region: str, loc: tuple[str | int, ...] = ("phone",)) -> str:
    """E.164 (``+33612345678``); national numbers are read in the programme's country."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed.on(loc, f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed.on(loc, f"{value!r} is not a valid phone number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_card(value: str, *, loc: tuple[str | int, ...] = ("card",)) -> str:
    card = "".join(value.split()).upper()
    if not card or len(card) > 64 or not card.replace("-", "").isalnum():
        raise ValidationFailed.on(loc, "a card number has letters, digits and dashes only")
    return card
