"""pytest-phyjudge's pytest entry point (being written; this stub keeps pytest importable)."""

from __future__ import annotations
