"""Removing blobs nobody uses any more, without racing a writer that is about to use the same blob again.

Blobs are content-addressed, so two photos with the same bytes share one. A blob may be deleted only when no
file row names it; `lock` (per server) makes "check, then delete" and "commit a file row, then make sure its
blob is there" take turns, so a blob cannot vanish under a file that was just committed.
"""

from __future__ import annotations

from communities.services.context import App
from communities.storage import media as media_repo


async def collect(app: App, key: str) -> None:
    async with app.blob_lock:
        async with app.db.unit_of_work(write=False) as uow:
            in_use = await media_repo.blob_in_use(uow, key)
        if not in_use:
            await app.blobs.delete(key)
