"""Settings from flags and environment variables, with defaults that just work (SQLite under ./data)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from communities.storage.database import default_sqlite_url

MIB = 1024 * 1024


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class SettingsError(ValueError):
    """A setting from the environment that cannot be read; the text names it."""


def _switch(name: str, default: bool) -> bool:
    """on/off (also true/false, yes/no, 1/0); anything else is an error that names the variable."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise SettingsError(f"{name} must be on or off, got {value!r}")


@dataclass
class Settings:
    listen: str = "127.0.0.1:50051"
    database: str = ""
    worker_id: int = 0
    grace_seconds: float = 10.0
    # Big enough for a target users file of 1,000,000 ids (about 21 MB as CSV) in and out.
    max_receive_bytes: int = 32 * MIB
    max_send_bytes: int = 32 * MIB
    log_level: str = "INFO"
    db_pool_size: int = 8
    media_dir: str = "data/media"
    # How long events are kept for Subscribe cursors and the audit log.
    event_retention_seconds: float = 7 * 24 * 3600.0
    # How long a temporary member may be without an open update stream before it is removed.
    temporary_grace_seconds: float = 60.0
    # Player identities: `ISSUER=ALG:file:PATH` / `ISSUER=ALG:env:NAME` entries (services/identities.py).
    jwt_keys: list[str] = field(default_factory=list)
    jwt_leeway_seconds: float = 30.0
    jwt_audience: str = ""
    # TLS: a PEM certificate chain and its key; with a client CA, clients must present a certificate it signed.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Prometheus metrics over HTTP at HOST:PORT ("" = off).
    metrics_listen: str = ""
    # The web console (HTTP: the page, its sign-in and the Connect bridge onto the API) at HOST:PORT, unless off.
    console: bool = True
    console_listen: str = "127.0.0.1:8080"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            listen=_env("COMMUNITIES_LISTEN", cls.listen),
            database=_env("COMMUNITIES_DATABASE", "") or default_sqlite_url(),
            worker_id=int(_env("COMMUNITIES_WORKER_ID", str(cls.worker_id))),
            grace_seconds=float(_env("COMMUNITIES_GRACE_SECONDS", str(cls.grace_seconds))),
            max_receive_bytes=int(_env("COMMUNITIES_MAX_RECEIVE_BYTES", str(cls.max_receive_bytes))),
            max_send_bytes=int(_env("COMMUNITIES_MAX_SEND_BYTES", str(cls.max_send_bytes))),
            log_level=_env("COMMUNITIES_LOG_LEVEL", cls.log_level),
            db_pool_size=int(_env("COMMUNITIES_DB_POOL_SIZE", str(cls.db_pool_size))),
            media_dir=_env("COMMUNITIES_MEDIA_DIR", cls.media_dir),
            event_retention_seconds=float(
                _env("COMMUNITIES_EVENT_RETENTION_SECONDS", str(cls.event_retention_seconds))
            ),
            temporary_grace_seconds=float(
                _env("COMMUNITIES_TEMPORARY_GRACE_SECONDS", str(cls.temporary_grace_seconds))
            ),
            # Entries separated by whitespace (spaces or newlines).
            jwt_keys=_env("COMMUNITIES_JWT_KEYS", "").split(),
            jwt_leeway_seconds=float(_env("COMMUNITIES_JWT_LEEWAY_SECONDS", str(cls.jwt_leeway_seconds))),
            jwt_audience=_env("COMMUNITIES_JWT_AUDIENCE", cls.jwt_audience),
            tls_cert=_env("COMMUNITIES_TLS_CERT", cls.tls_cert),
            tls_key=_env("COMMUNITIES_TLS_KEY", cls.tls_key),
            tls_client_ca=_env("COMMUNITIES_TLS_CLIENT_CA", cls.tls_client_ca),
            metrics_listen=_env("COMMUNITIES_METRICS_LISTEN", cls.metrics_listen),
            console=_switch("COMMUNITIES_CONSOLE", cls.console),
            console_listen=_env("COMMUNITIES_CONSOLE_LISTEN", cls.console_listen),
        )

    @property
    def safe_database(self) -> str:
        """The database URL with any password masked, for logs."""
        from sqlalchemy.engine import make_url

        return make_url(self.database).render_as_string(hide_password=True)
