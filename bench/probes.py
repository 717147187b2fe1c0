"""Single operations that are not throughput: how long one big operation takes, its server CPU, and how much
memory the server takes for it (RSS sampled with psutil every RSS_SAMPLE_S while it runs).

- `target_users`: CreateInvite with a target_users_file of 1,000,000 random 18-19 digit ids (none of them
  registered users), then GetTargetUsersJobStatus every POLL_S until the job is no longer PROCESSING.
- `edit_photo`: a noisy 3000x2000 JPEG of about 2 MB, uploaded in 512 KiB UploadFilePart calls, then EditPhoto;
  repeated, figures are medians.

The bench runs them on the idle server after the scenarios' setup, before the throughput runs (so the memory
growth is measured from a server that has not yet served the load), one after the other.
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

import grpc
import psutil

from communities.v1 import (
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
)

if TYPE_CHECKING:
    from bench.scenarios import SetupContext

PROBES = ("target_users", "edit_photo")
MIB = 2**20
RSS_SAMPLE_S = 0.05
POLL_S = 0.2
JOB_TIMEOUT_S = 300.0
PART_BYTES = 512 * 1024
IMAGE_SIZE = (3000, 2000)
JPEG_QUALITY = 92
JPEG_NOISE_SIGMA = 6  # with the smooth background below, a JPEG of about 2 MB


class RssPeak:
    """Samples a process's RSS every RSS_SAMPLE_S while the `async with` block runs; `peak` in bytes."""

    def __init__(self, pid: int):
        self._process = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self._task: asyncio.Task | None = None

    def sample(self) -> int:
        rss = self._process.memory_info().rss
        self.peak = max(self.peak, rss)
        self.samples += 1
        return rss

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(RSS_SAMPLE_S)

    async def __aenter__(self) -> RssPeak:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.sample()


def target_users_file(count: int, seed: int = 1) -> bytes:
    """CSV with a `user_id` header and `count` distinct random ids of 18-19 digits."""
    rng = random.Random(seed)
    ids: set[int] = set()
    while len(ids) < count:
        ids.add(rng.randrange(10**17, 10**19))
    return b"user_id\n" + b"\n".join(b"%d" % user_id for user_id in ids) + b"\n"


def noisy_jpeg(seed: int = 7) -> bytes:
    """A 3000x2000 photo-like JPEG: smooth colour blobs plus grain, quality 92 (about 2 MB)."""
    from PIL import Image, ImageChops

    rng = random.Random(seed)
    small = Image.frombytes("RGB", (60, 40), bytes(rng.randrange(256) for _ in range(60 * 40 * 3)))
    background = small.resize(IMAGE_SIZE, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(IMAGE_SIZE, JPEG_NOISE_SIGMA).convert("RGB")
    out = io.BytesIO()
    ImageChops.add(background, grain, offset=-128).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


async def _new_community(ctx: SetupContext, name: str) -> tuple[Any, int, int]:
    """A bot that owns a new community: (the bot, community id, id of its general channel)."""
    from bench.scenarios import community_with_channel

    owner = await ctx.principal(f"{name} owner", bot=True)
    community_id, channel_id = await community_with_channel(ctx, owner, name)
    return owner, community_id, channel_id


async def probe_target_users(ctx: SetupContext, ids: int) -> dict[str, Any]:
    owner, _, channel_id = await _new_community(ctx, "bench targets")
    data = await asyncio.to_thread(target_users_file, ids)
    options = [("grpc.max_send_message_length", 64 * MIB), ("grpc.max_receive_message_length", 64 * MIB)]
    async with grpc.aio.insecure_channel(ctx.server.address, options=options) as channel:
        invites = invites_pb2_grpc.InvitesStub(channel)
        await asyncio.sleep(1.0)  # let the server settle after the setup
        rss = RssPeak(ctx.server.pid)
        baseline = rss.sample()
        rss.peak = baseline
        cpu0 = ctx.server.cpu_seconds()
        async with rss:
            started = time.monotonic()
            invite = await invites.CreateInvite(
                invites_pb2.CreateInvite(channel_id=channel_id, max_age=0, unique=True, target_users_file=data),
                metadata=owner.metadata,
                timeout=JOB_TIMEOUT_S,
            )
            created = time.monotonic()
            polls = 0
            while True:
                status = await invites.GetTargetUsersJobStatus(
                    invites_pb2.GetTargetUsersJobStatus(code=invite.code), metadata=owner.metadata, timeout=30
                )
                polls += 1
                if status.status != invites_pb2.PROCESSING or time.monotonic() - started > JOB_TIMEOUT_S:
                    break
                await asyncio.sleep(POLL_S)
            finished = time.monotonic()
        cpu = ctx.server.cpu_seconds() - cpu0
    return {
        "ids": ids,
        "file_mb": len(data) / MIB,
        "status": invites_pb2.JobStatus.Name(status.status),
        "error": status.error_message,
        "total_users": status.total_users,
        "processed_users": status.processed_users,
        "unknown_users": status.unknown_users,
        "seconds": finished - started,
        "create_invite_s": created - started,
        "polls": polls,
        "server_cpu_s": cpu,
        "rss_baseline_mb": baseline / MIB,
        "rss_peak_mb": rss.peak / MIB,
        "rss_growth_mb": (rss.peak - baseline) / MIB,
        "rss_samples": rss.samples,
    }


async def probe_edit_photo(ctx: SetupContext, photos: int) -> dict[str, Any]:
    owner, community_id, _ = await _new_community(ctx, "bench photo")
    jpeg = await asyncio.to_thread(noisy_jpeg)
    parts = [jpeg[offset : offset + PART_BYTES] for offset in range(0, len(jpeg), PART_BYTES)]
    media = media_pb2_grpc.MediaStub(ctx.channel)
    communities = communities_pb2_grpc.CommunitiesStub(ctx.channel)
    rng = random.Random(3)
    totals, uploads, edits, cpus = [], [], [], []
    await asyncio.sleep(1.0)
    rss = RssPeak(ctx.server.pid)
    baseline = rss.sample()
    rss.peak = baseline
    async with rss:
        for _ in range(photos):
            upload_id = rng.randrange(1, 2**63)
            cpu0, started = ctx.server.cpu_seconds(), time.monotonic()
            for number, data in enumerate(parts):
                await media.UploadFilePart(
                    media_pb2.UploadFilePart(upload_id=upload_id, part=number, data=data),
                    metadata=owner.metadata,
                    timeout=30,
                )
            uploaded = time.monotonic()
            edited = await communities.EditPhoto(
                communities_pb2.EditPhoto(
                    community_id=community_id,
                    file=media_pb2.UploadedFileRef(id=upload_id, name="bench.jpg", part_count=len(parts)),
                ),
                metadata=owner.metadata,
                timeout=60,
            )
            finished = time.monotonic()
            cpus.append(ctx.server.cpu_seconds() - cpu0)
            if not edited.photo.file_id:
                raise RuntimeError("EditPhoto answered a community without a photo")
            totals.append(finished - started)
            uploads.append(uploaded - started)
            edits.append(finished - uploaded)
    return {
        "photos": photos,
        "jpeg_mb": len(jpeg) / MIB,
        "image": f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}",
        "parts": len(parts),
        "seconds": statistics.median(totals),
        "upload_s": statistics.median(uploads),
        "edit_s": statistics.median(edits),
        "server_cpu_s": statistics.median(cpus),
        "seconds_each": totals,
        "server_cpu_s_each": cpus,
        "rss_baseline_mb": baseline / MIB,
        "rss_peak_mb": rss.peak / MIB,
        "rss_growth_mb": (rss.peak - baseline) / MIB,
        "rss_samples": rss.samples,
    }


async def run(ctx: SetupContext, names: list[str], *, target_ids: int, photos: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "target_users" in names:
        results["target_users"] = await probe_target_users(ctx, target_ids)
    if "edit_photo" in names:
        results["edit_photo"] = await probe_edit_photo(ctx, photos)
    return results
