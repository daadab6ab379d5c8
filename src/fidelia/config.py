"""Settings read from the environment (prefix ``FIDELIA_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIDELIA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///fidelia.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # How long an SQLite writer waits for the lock before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 30_000
    db_pool_size: int = 10
    # Group-commit writer threads per API process (fidelia.intake.group); 0 means the default,
    # one. More only helps on PostgreSQL when the database has cores of its own.
    intake_writers: int = Field(default=0, ge=0, le=16)
    # The in-process worker that `fidelia serve` runs next to the API.
    embedded_worker: bool = True
    worker_poll_seconds: float = 1.0
    job_max_attempts: int = 8
    job_backoff_seconds: float = 10.0
    log_level: str = "info"
    # Request bodies larger than this are refused with 413; bulk calls (events/batch) take more.
    max_body_bytes: int = 1024 * 1024
    max_bulk_body_bytes: int = 16 * 1024 * 1024
    # Rate-limit buckets: "database" (shared by every API process), "memory" (this process
    # only), or "auto": the database on PostgreSQL, memory on SQLite (one process).
    rate_limit_store: str = "auto"
    # An API key's last_used_at is written at most this often per process.
    key_last_used_seconds: float = 60.0
    # The back-office: how long a session lasts, signed in and idle; throttling of sign-ins.
    backoffice_session_hours: float = 12.0
    backoffice_idle_minutes: float = 60.0
    login_window_minutes: float = 15.0
    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 20
    # Where the back-office is reached from outside (links in password reset emails).
    public_url: str = "http://127.0.0.1:8000"
    # The SMTP server that sends back-office emails (password resets).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "fidelia@localhost"
    smtp_timeout_seconds: float = 10.0
    # Outbound webhooks: plain HTTP to loopback targets is for development only.
    webhooks_allow_loopback: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_backoff_seconds: float = 30.0
    webhook_retry_hours: float = 72.0
    webhook_batch: int = 50
    # Pruning (issue 16): delivered webhook deliveries, failed ones and notices (the feed)
    # older than these many days are deleted by the daily `webhooks.prune` job.
    prune_delivered_days: int = Field(default=30, ge=1)
    prune_failed_days: int = Field(default=90, ge=1)
    prune_notices_days: int = Field(default=90, ge=1)
    # Export jobs (issue 16): where their files are written (default: <temp dir>/fidelia-exports),
    # how many days a finished file is kept, and how many rows one job run writes.
    export_dir: str = ""
    export_keep_days: int = Field(default=7, ge=1)
    export_rows_per_run: int = Field(default=50_000, ge=1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
