"""What both invite examples need: the bot token from the environment, and errors printed with the details the
server attaches (google.rpc.Status: ErrorInfo reason, BadRequest field violations)."""

import os
import sys
from collections.abc import Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def bot_token() -> str:
    """COMMUNITIES_BOT_TOKEN, or exit with how to make one. Never put a token in the code."""
    token = os.environ.get("COMMUNITIES_BOT_TOKEN")
    if not token:
        sys.exit(
            "error: COMMUNITIES_BOT_TOKEN is not set. Create a bot with\n"
            '  .venv/bin/communities users create "Game Bot" --bot --json\n'
            "and export its token as COMMUNITIES_BOT_TOKEN."
        )
    return token


def explain(error: grpc.RpcError) -> str:
    """The status code and message, plus the google.rpc.Status details the server attaches to every error."""
    lines = [f"{error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            extra = "".join(f" {key}={value}" for key, value in sorted(info.metadata.items()))
            lines.append(f"  reason: {info.reason}{extra}")
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        lines.append("  (is the server running? ./scripts/serve, or set COMMUNITIES_ADDRESS)")
    elif error.code() == grpc.StatusCode.UNAUTHENTICATED:
        lines.append("  (check the token: a bot token with `Bot`, a person's token with `Bearer`)")
    return "\n".join(lines)


def reason(error: grpc.RpcError) -> str | None:
    """The ErrorInfo reason of an error (e.g. CURSOR_EXPIRED), to tell apart errors that share a status code."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def run(main: Callable[[], None]) -> None:
    """Runs main(); a failed call ends the script with its explanation and a non-zero exit."""
    try:
        main()
    except grpc.RpcError as error:
        sys.exit(f"error: {explain(error)}")
