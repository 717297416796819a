"""Models used only by the test suite."""

from __future__ import annotations
