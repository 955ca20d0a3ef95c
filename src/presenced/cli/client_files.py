"""``zuliprc``: a new API key in a zuliprc file that only its owner can read (the module is not
named after the command: the repository ignores files called zuliprc*, which hold keys)."""

from __future__ import annotations

import argparse
import os
import stat
import sys

from presenced.cli.common import (
    PRIVATE_FILE_MODE,
    CommandError,
    find_user,
    new_api_key,
)
from presenced.realms import realm_url
from presenced.settings import Settings
from presenced.store.base import (
    Store,
)


async def cmd_zuliprc(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    """The file holds a working API key: it is written readable by its owner only (0600),
    whether named with ``--output`` or redirected to with ``>``."""
    user = await find_user(store, args)
    if args.output is not None:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    _, key = await new_api_key(store, user, args.label)
    site = args.site or realm_url(args.realm, settings.external_host, settings.external_uri_scheme)
    text = f"[api]\nemail={user.delivery_email}\nkey={key}\nsite={site}\n"
    if args.output is None:
        make_private_if_file(sys.stdout.fileno())
        sys.stdout.write(text)
        return
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), PRIVATE_FILE_MODE)
        out.write(text)
    print(f"wrote {args.output} (mode 0600)", file=sys.stderr)


def make_private_if_file(fd: int) -> None:
    """``zuliprc > FILE``: the shell created FILE with the umask's mode; narrow it to 0600."""
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except OSError:
        pass
