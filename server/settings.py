"""Every setting of Insights, read from `INSIGHTS_*` environment variables.

The README's settings table is generated from the field descriptions here, so a setting is
documented exactly once.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INSIGHTS_", env_file=".env", extra="ignore")

    # --- where things run -------------------------------------------------------------------
    home: Path = Field(Path(".insights"), description="Directory for embedded PostgreSQL/Redis data, exports, the generated secret key.")
    database_url: str | None = Field(None, description="PostgreSQL URL (`postgresql+asyncpg://...`). Unset: start an embedded PostgreSQL under `INSIGHTS_HOME`.")
    redis_url: str | None = Field(None, description="Redis URL. Unset: start an embedded Redis under `INSIGHTS_HOME`.")
    host: str = Field("127.0.0.1", description="Address `insights serve` listens on.")
    port: int = Field(8000, description="Port `insights serve` listens on.")
    public_url: str | None = Field(None, description="Base URL clients use to reach the server (links in emails and download URLs). Default: `http://HOST:PORT`.")
    environment: str = Field("development", description="`development` or `production`; production requires `INSIGHTS_SECRET_KEY` and secure cookies.")
    log_level: str = Field("INFO", description="Python log level.")
    db_pool_size: int = Field(10, description="SQLAlchemy connection pool size per process.")

    # --- security ---------------------------------------------------------------------------
    secret_key: str | None = Field(None, description="Key for signing JWTs and encrypting secrets. Unset in development: generated once and kept in `INSIGHTS_HOME/secret_key`.")
    session_ttl_hours: int = Field(24, description="Lifetime of a login session (JWT and cookie).")
    session_cookie_name: str = Field("insights_session", description="Name of the HTTP-only session cookie.")
    cookie_secure: bool = Field(False, description="Mark the session cookie `Secure` (turn on behind HTTPS).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list), e.g. `[\"https://app.example.com\"]`.")
    ws_allowed_origins: list[str] = Field(default_factory=list, description="Origins allowed to open GraphQL websockets (JSON list); empty allows any origin (clients still authenticate in `connection_init`).")
    ws_compression: bool = Field(False, description="Negotiate permessage-deflate on GraphQL websockets. Off by default: subscription messages are small JSON, and compressing each one for every subscriber cost more server CPU than the whole shared execution of the event (see bench/incident_fanout.py).")
    invite_ttl_days: int = Field(7, description="Days an organization invite stays valid.")
    login_attempts_per_15min: int = Field(10, description="Failed-login budget per address and per account in 15 minutes.")

    # --- GraphQL ----------------------------------------------------------------------------
    graphiql: bool = Field(True, description="Serve the GraphiQL IDE at `/graphql` for browsers.")
    introspection: bool = Field(True, description="Allow schema introspection queries.")
    page_size_default: int = Field(50, description="Default `first` of connections.")
    page_size_max: int = Field(500, description="Largest `first`/`last` a connection accepts.")
    max_query_depth: int = Field(12, description="Deepest selection nesting accepted.")
    max_aliases: int = Field(30, description="Most aliases in one operation.")
    max_tokens: int = Field(4000, description="Most lexical tokens in one document.")
    max_query_cost: int = Field(50_000, description="Largest query cost: each field costs 1, list fields multiply their children by `first`/`last` (or the default page size).")
    rate_limit_per_minute: int = Field(100, description="GraphQL requests per minute per user, API key or (anonymous) address.")
    rate_limit_per_hour: int = Field(1000, description="GraphQL requests per hour per user, API key or (anonymous) address.")
    max_body_bytes: int = Field(1_048_576, description="Largest request body accepted on `/graphql`.")

    # --- jobs -------------------------------------------------------------------------------
    worker_threads: int = Field(1, description="Dramatiq worker threads `insights serve` runs in-process (0 disables the in-process worker).")
    run_scheduler: bool | None = Field(None, description="Run the scheduler inside `insights serve`. Default: on in zero-config mode, off otherwise.")
    job_resend_after_seconds: int = Field(30, description="A pending job not picked up for this long is re-sent by the sweeper.")
    job_stale_running_seconds: int = Field(600, description="A running job without progress for this long is considered lost and re-sent.")
    job_max_attempts: int = Field(3, description="Attempts before a job is marked failed.")
    scheduler_tick_seconds: float = Field(1.0, description="How often the scheduler looks for due schedules and lost jobs.")

    # --- inbound webhooks ------------------------------------------------------------------
    webhook_max_body_bytes: int = Field(1_048_576, description="Largest inbound webhook body (checked against `Content-Length` and while reading); larger ones get 413.")
    webhook_dedup_window_hours: int = Field(24, description="A webhook delivery repeating an accepted one of the same config (same provider delivery id or identical body) within this many hours is a duplicate: answered 202 with `duplicate: true`, changing nothing.")
    webhook_key_grace_hours: int = Field(24, description="After `webhookConfigRegenerateKey`, the previous `ins_` key keeps working for this many hours, so senders can be switched over without losing deliveries.")
    webhook_signature_max_age_seconds: int = Field(300, ge=0, description="A webhook signature that covers a timestamp (Grafana's HMAC with a timestamp header) is refused with 401 `INVALID_SIGNATURE` when that timestamp is more than this many seconds old, or ahead of the server's clock, so a captured delivery cannot be replayed later. Signatures without a timestamp are not affected; 0 turns the check off.")
    webhook_batch_concurrency: int = Field(1, ge=1, le=32, description="Transactions of webhook deliveries in flight per server process. Deliveries arriving while one runs are stored together in the next (one organization lock, one load, one write per batch); with 1 (measured best: batches serialize on the organization lock anyway) a lone delivery is stored at once and a burst in batches.")
    webhook_batch_max: int = Field(64, ge=1, le=1000, description="Most webhook deliveries stored in one transaction.")

    # --- event photos (tracking plan) -------------------------------------------------------
    photo_storage_backend: Literal["local", "s3", "gcs"] = Field("local", description="Where event photos are stored: `local` (files under `INSIGHTS_PHOTO_STORAGE_DIR`), `s3` (AWS S3 or any S3-compatible service: MinIO, Cloudflare R2, Ceph, ...) or `gcs` (Google Cloud Storage).")
    photo_storage_dir: Path | None = Field(None, description="Directory of the `local` photo backend. Default: `INSIGHTS_HOME/photos`.")
    photo_storage_bucket: str | None = Field(None, description="Bucket of the `s3` and `gcs` photo backends (required for them).")
    photo_storage_prefix: str | None = Field(None, description="Key prefix inside the bucket (e.g. `insights/photos`), so one bucket can serve several installations.")
    photo_storage_endpoint: str | None = Field(None, description="Endpoint URL of an S3-compatible service (`https://minio.internal:9000`; `http://` is allowed) or of a GCS emulator. Unset: AWS S3 of `INSIGHTS_PHOTO_STORAGE_REGION`, or Google's GCS endpoint.")
    photo_storage_region: str | None = Field(None, description="S3 region. Unset: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.")
    photo_storage_access_key_id: str | None = Field(None, description="S3 access key id. Unset: the standard AWS credential chain (`AWS_ACCESS_KEY_ID`, web identity, ECS/EC2 instance roles).")
    photo_storage_secret_access_key: str | None = Field(None, description="S3 secret access key (with `INSIGHTS_PHOTO_STORAGE_ACCESS_KEY_ID`).")
    photo_storage_gcs_credentials: str | None = Field(None, description="GCS service account: the path of its JSON key file, or the JSON itself. Unset: application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata server).")
    photo_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest event photo accepted (PNG, JPEG, GIF or WebP), in bytes; 10 MiB by default. Multipart GraphQL requests may be this much larger than `INSIGHTS_MAX_BODY_BYTES`.")

    # --- warehouse (data sources, scans) ---------------------------------------------------
    warehouse_timeout_seconds: int = Field(30, ge=1, le=3600, description="Timeout of warehouse operations (connecting, each query, each chunk of a result) for data sources that set none of their own.")
    warehouse_duckdb_dir: Path | None = Field(None, description="Directory of DuckDB data source files. An organization's DuckDB data source names a file relative to `<this directory>/<organization id>/` (the demo warehouse is written there too). Default: `INSIGHTS_HOME/warehouse`.")
    warehouse_demo_first_scan: bool = Field(True, description="Queue the first scan of the demo warehouse when `projectCreateDemo` creates a demo project, so its charts fill at once (a few seconds of worker time, the most recent week first). Off: the scheduler scans it an interval later.")
    warehouse_duckdb_absolute_paths: bool = Field(False, description="Let DuckDB data sources name any absolute file path on the server. Off by default: the server opens the file with its own permissions, so on a shared installation an owner could otherwise read any DuckDB file the server can (another organization's included). Turn on only for single-tenant installations.")

    # --- email ------------------------------------------------------------------------------
    smtp_host: str | None = Field(None, description="SMTP server for invite emails; unset: emails are logged instead of sent.")
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_username: str | None = Field(None, description="SMTP user.")
    smtp_password: str | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(True, description="Use STARTTLS with the SMTP server.")
    smtp_from: str = Field("insights@localhost", description="Sender address of emails.")

    @property
    def zero_config(self) -> bool:
        return self.database_url is None and self.redis_url is None

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def duckdb_dir(self) -> Path:
        return self.warehouse_duckdb_dir or self.home / "warehouse"

    @property
    def photos_dir(self) -> Path:
        return self.photo_storage_dir or self.home / "photos"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def signing_key(self) -> str:
        """The secret key, generated and persisted under `home` on first use in development."""
        if self.secret_key:
            return self.secret_key
        if self.environment == "production":
            raise RuntimeError("INSIGHTS_SECRET_KEY must be set in production")
        path = self.home / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.secret_key = path.read_text().strip()
        return self.secret_key


@functools.cache
def get_settings() -> Settings:
    return Settings()
