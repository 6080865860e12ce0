"""forum-archiver: fetch forum threads politely, clean them, and archive them in SQLite."""

__version__ = "0.1.0"
