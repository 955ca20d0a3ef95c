"""Embed tokens: random like API keys (about 190 bits), shown once, stored only as a SHA-256
hash, so the store can find one with one indexed lookup and never holds the token itself."""

from __future__ import annotations

from presenced.keys import generate_api_key, has_api_key_format, hash_api_key


def new_token() -> str:
    return generate_api_key()


def has_token_format(token: str) -> bool:
    return has_api_key_format(token)


def token_hash(token: str) -> str:
    return hash_api_key(token)
