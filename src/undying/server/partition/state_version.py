"""The version of an object's K/V state, as the admin API's state patches carry it.

``restate state patch`` and ``restate state clear`` read the state, compute its version and
send it with the new state; the patch is applied only if the state still has that version when
the partition applies it (else it is ignored, as restate-server does). The version is a SHA-256
over the entries in key order, each framed as ``index (8 bytes, big-endian), 0x01, key, 0x02,
value, 0x03``, in unpadded URL-safe base64.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

__all__ = ["state_version"]


def state_version(entries: Mapping[bytes, bytes]) -> str:
    """The version of a state made of ``entries``.

    >>> state_version({})
    '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU'
    """
    digest = hashlib.sha256()
    for index, key in enumerate(sorted(entries)):
        digest.update(index.to_bytes(8, "big"))
        digest.update(b"\x01" + key + b"\x02" + entries[key] + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")
