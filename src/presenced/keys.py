"""API keys: 32 random alphanumerics, shown once, stored only as a SHA-256 hash.

A key carries about 190 bits of randomness, so a fast unsalted hash is safe to store and lets
authentication find the key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

KEY_LENGTH = 32
PREFIX_LENGTH = 4
_ALPHABET = string.ascii_letters + string.digits
_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{32}")


def generate_api_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def has_api_key_format(key: str) -> bool:
    return _KEY_FORMAT.fullmatch(key) is not None


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()
