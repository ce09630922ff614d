"""Helpers shared by tests: reading the feedback database the way another process would."""

from __future__ import annotations

import sqlite3


def store_target_of(app) -> str:
    """Where the app's feedback store lives: its postgresql:// URL or its SQLite file."""
    return app.config.get("DATABASE_URL") or app.config["FEEDBACK_DB"]


def read_table(where, sql: str, args: tuple = ()) -> list[dict]:
    """Rows of ``sql`` (``?`` placeholders) from an app's store or a store target (file or URL),
    read on a connection of their own, as another process would see them: only what was committed."""
    target = where if isinstance(where, str) else store_target_of(where)
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(target, row_factory=dict_row) as conn:
            return [dict(r) for r in conn.execute(sql.replace("?", "%s"), args)]
    conn = sqlite3.connect(target)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()
