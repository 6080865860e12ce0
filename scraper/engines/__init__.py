"""Forum engines: one module per forum software, each implementing engines.base.Engine."""

from __future__ import annotations

from scraper.engines.base import Engine
from scraper.errors import ConfigError


def get_engine(name: str) -> Engine:
    """Return the engine registered under `name` (for example 'discuz')."""
    if name == "discuz":
        from scraper.engines.discuz import DiscuzEngine

        return DiscuzEngine()
    raise ConfigError(f"unknown engine {name!r}; known engines: discuz")
