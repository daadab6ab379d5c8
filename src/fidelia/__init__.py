"""Fidelia: an open-source customer loyalty and engagement platform."""

__version__ = "0.1.0"
