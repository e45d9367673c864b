"""The only owner of the SQLite database: :class:`~aggregator.storage.database.Storage` and
the modules it is made of (connection and migrations in :mod:`.database`; each table's queries
in a mixin; pure conversions in :mod:`.rows` and :mod:`.ids`; what a poll writes decided in
:mod:`.plan`).
"""

from aggregator.storage.database import Storage

__all__ = ["Storage"]
