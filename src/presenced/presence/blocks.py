"""JSON text made of pieces, some of them cached blocks that are compressed at most once.

A large presence delta is a join of cached 256-entry blocks (see ``index``). Each block keeps
its own raw-deflate encoding, made by a fresh compressor and ended with a sync flush: such
pieces are byte-aligned, carry no back-reference outside themselves and no final-block bit, so
any sequence of them is one valid deflate stream. The HTTP layer frames that stream as gzip
(header, pieces, a final empty block, CRC-32 and length) without recompressing the blocks.
"""

from __future__ import annotations

import zlib

DEFLATE_LEVEL = 6
"""zlib's default: what nginx's ``gzip_comp_level`` 1-6 range ends at, at a fraction of 9's CPU."""


def deflate_piece(data: bytes) -> bytes:
    """``data`` as a self-contained, sync-flushed raw deflate piece."""
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class Block:
    """Immutable JSON bytes whose deflate piece is computed on first use and kept."""

    __slots__ = ("_deflated", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._deflated: bytes | None = None

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def deflated(self) -> bytes:
        if self._deflated is None:
            self._deflated = deflate_piece(self.raw)
        return self._deflated


Piece = bytes | Block


class JoinedJson:
    """One JSON value (e.g. a ``presences`` object) as a sequence of pieces.

    ``encoded`` joins them (once); a gzip response uses the blocks' cached pieces instead.
    """

    __slots__ = ("_encoded", "pieces")

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces
        self._encoded: bytes | None = None

    @property
    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = b"".join(p.raw if isinstance(p, Block) else p for p in self.pieces)
        return self._encoded

    def __len__(self) -> int:
        return sum(len(p) for p in self.pieces)
