"""The demo forum: a local Discuz! X3.4-style site rendered from the data in seeds/demo/.

seeddata.py turns the seed text page into structured data, forum.py holds the forum (and the
mutations tests and demos make), render.py writes its pages, server.py serves them over HTTP.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
DEMO_DATA_DIR = SEEDS_DIR / "demo"
