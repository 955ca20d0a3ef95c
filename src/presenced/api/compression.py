"""gzip response bodies (``Content-Encoding: gzip``), as Zulip's nginx sends its JSON.

Bodies below ``GZIP_MIN_BYTES`` stay as they are: compressing a few hundred bytes costs more
CPU than the bytes it saves. Cached blocks (``presence.blocks``) bring their own deflate piece;
only the pieces around them are compressed per response, and the whole is framed as one gzip
member (RFC 1952). One member, not one per block: gzip members concatenate validly, and Python
and requests read them all, but Chromium decodes only the first member and silently drops the
rest (checked with Debian's chromium while building this).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from presenced.presence.blocks import DEFLATE_LEVEL, Block, Piece, deflate_piece

GZIP_MIN_BYTES = 1024
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""Magic, deflate, no flags, no mtime, no extra flags, unknown OS."""
FINAL_EMPTY_BLOCK = b"\x03\x00"
"""A fixed-Huffman block with the final bit set and no data: ends the deflate stream."""
_COMMA = deflate_piece(b",")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` refuses it)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


def gzip_pieces(pieces: Sequence[Piece]) -> bytes:
    """One gzip member: plain pieces compressed here, blocks from their cached deflate."""
    if not any(isinstance(piece, Block) for piece in pieces):
        return gzip_bytes(b"".join(p for p in pieces if isinstance(p, bytes)))
    out = [GZIP_HEADER]
    crc = 0
    size = 0
    run: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, Block):
            if run:
                out.append(_deflate_run(run))
                run = []
            out.append(piece.deflated)
            data = piece.raw
        else:
            run.append(piece)
            data = piece
        crc = zlib.crc32(data, crc)
        size += len(data)
    if run:
        out.append(_deflate_run(run))
    out.append(FINAL_EMPTY_BLOCK)
    out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(out)


def _deflate_run(run: list[bytes]) -> bytes:
    data = b"".join(run)
    return _COMMA if data == b"," else deflate_piece(data)
