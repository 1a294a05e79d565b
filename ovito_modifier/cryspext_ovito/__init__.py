"""OVITO modifier for cryspext's ARISE classification with strided pattern matching."""

from __future__ import annotations

from .modifier import AriseModifier

__all__ = ["AriseModifier"]
