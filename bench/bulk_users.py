"""Make many people at once: `python -m bench.bulk_users DATABASE COUNT OUTFILE [PREFIX]`.

`communities users create NAME --json` makes one user per process start (a few hundred milliseconds each). The
invite scenarios need tens of thousands of distinct users, so this runs the CLI's own code (its `_with_app`:
same database preparation, the CLI's worker id, the same `create_user` service) for COUNT users in one process,
and writes one `Bearer TOKEN` line per user to OUTFILE. The bench runs it with the server's environment, so it
uses the same source tree as the server (see BenchServer).
"""

from __future__ import annotations

import sys
from pathlib import Path


async def _create(app, count: int, prefix: str) -> list[str]:
    from communities.services import users

    made = []
    for number in range(count):
        credentials = await users.create_user(app, f"{prefix} {number}", bot=False)
        made.append(f"Bearer {credentials.token}")
    return made


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    database, count, out = args[0], int(args[1]), Path(args[2])
    prefix = args[3] if len(args) == 4 else "bench user"

    from communities.cli import _run, _with_app
    from communities.config import Settings

    settings = Settings.from_env()
    settings.database = database
    authorizations = _run(_with_app(settings, lambda app: _create(app, count, prefix)))
    out.write_text("\n".join(authorizations) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
