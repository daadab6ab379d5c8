"""The back-office fixtures, for the offers page's tests."""

from tests.web.conftest import browser, signed_in, web_app  # noqa: F401
