"""Public ids of entries and comments: stable UUID5 text derived from a source's name and an
entry's key (and a comment's key within its entry), the same across restarts and re-publishing.

Owns only the derivation; storing the ids is :mod:`aggregator.storage.entries`' and
:mod:`aggregator.storage.comments`' job.
"""

from __future__ import annotations

import hashlib
import uuid

_ID_NAMESPACE = uuid.UUID("6f1c1f0e-4a57-4d2b-9a51-0a9f8f6c2b10")
_NAMESPACE_BYTES = _ID_NAMESPACE.bytes


def uuid5_hex(name: str) -> str:
    """``uuid.uuid5(_ID_NAMESPACE, name).hex``, without building a ``UUID`` (a cold poll makes
    one per comment: this is a quarter of the cost)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def entry_public_id(source_name: str, key: str) -> str:
    """A stable, globally unique id for an entry: the same across restarts and re-publishing."""
    return uuid5_hex(f"entry\0{source_name}\0{key}")


def comment_public_id(entry_public: str, key: str) -> str:
    """A stable, globally unique id for a comment within its entry."""
    return uuid5_hex(f"comment\0{entry_public}\0{key}")

