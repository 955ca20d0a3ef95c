"""Shared by the embed tests: tokens made through the store, as ``presenced embed create``
makes them."""

from __future__ import annotations

from conftest import Harness
from presenced.keys import PREFIX_LENGTH
from presenced.store.base import EmbedToken
from presenced.web.embed.tokens import new_token, token_hash


def make_token(
    harness: Harness,
    *,
    realm: str = "",
    user_ids: frozenset[int] | None = None,
    origins: tuple[str, ...] = (),
    label: str = "test",
) -> tuple[str, EmbedToken]:
    token = new_token()
    record = harness.run(
        harness.server.store.create_embed_token,
        harness.realm(realm).id,
        token_hash(token),
        token[:PREFIX_LENGTH],
        label,
        user_ids,
        origins,
        harness.clock(),
    )
    return token, record
