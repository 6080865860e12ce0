"""The archive: SQLite only, and nothing from the scraper.

db.py opens the file, schema.py defines it, archive.py is the only writer, dedup.py decides
what is new, search.py finds post text (Chinese included).
"""

from storage.archive import Archive, ReadOnlyArchiveError, SaveResult
from storage.search import SEARCH_SQL, search_posts

__all__ = ["SEARCH_SQL", "Archive", "ReadOnlyArchiveError", "SaveResult", "search_posts"]
