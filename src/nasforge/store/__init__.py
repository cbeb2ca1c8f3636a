"""Persistence of runs, trials and final-training results: SQLite by default, PostgreSQL for a
store shared by machines.

``Store(url)`` takes a path (``runs.db``), ``sqlite:///PATH`` or
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME``; see `sql.Store`.
"""

from nasforge.store.records import RUN_STATES, StoredRun, StoredTrial
from nasforge.store.sql import SCHEMA_VERSION, Store
from nasforge.store.urls import ACCEPTED, mask

__all__ = ["ACCEPTED", "RUN_STATES", "SCHEMA_VERSION", "Store", "StoredRun", "StoredTrial", "mask"]
