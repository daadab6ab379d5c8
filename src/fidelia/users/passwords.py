"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile:
64 MiB, 3 passes). Tests switch to the cheapest parameters with :func:`use_parameters`; a hash
made with other parameters still verifies, and is upgraded at the next sign-in."""

from __future__ import annotations

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fidelia.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 200
_state: dict[str, PasswordHasher | str] = {"hasher": PasswordHasher()}


def use_parameters(parameters: Parameters) -> None:
    """Hash with ``parameters`` from now on (tests use ``argon2.profiles.CHEAPEST``)."""
    _state.clear()
    _state["hasher"] = PasswordHasher.from_parameters(parameters)


def _hasher() -> PasswordHasher:
    hasher = _state["hasher"]
    assert isinstance(hasher, PasswordHasher)
    return hasher


def _dummy() -> str:
    """Verified against when the email is unknown, so that a wrong email costs as long as a
    wrong password and the response time does not say which accounts exist."""
    if "dummy" not in _state:
        _state["dummy"] = _hasher().hash("not a password of anyone")
    return str(_state["dummy"])


def check_strength(password: str, *, loc: str = "password") -> None:
    """Refuse a password too short or too long to be a sensible one."""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed.on(loc, f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValidationFailed.on(loc, f"at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash to store."""
    return _hasher().hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (``None``: no such user, still hashed once)."""
    try:
        return _hasher().verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether the stored hash was made with weaker parameters than today's."""
    return _hasher().check_needs_rehash(stored)
