"""Frozen dense encoders (never trained here): each returns L2-normalised float32 vectors."""

from lsr.encoders.base import TextEncoder

__all__ = ["TextEncoder"]
