"""The demo warehouse `projectCreateDemo` adds to the demo plan: a DuckDB file of generated events
for the demo plan's events, a DUCKDB data source naming it and a scan config `demo` over it, so
the first scan fills the metric series and a newcomer sees charts at once.

The data (deterministic: `SEED`; vectorized, no per-row Python):

- NumPy draws the number of events of every (stream, hour) cell from a Poisson law whose rate is
  the stream's mean rate times a daily profile (quiet nights, afternoon and evening peaks), a
  weekly profile (quieter weekends), a slow growth and the stories below (`cell_counts`). The
  matrix (streams x hours, ~20k cells) is the whole truth about volumes: tests sum it.
- DuckDB expands the cells into rows inside one `CREATE TABLE .. AS SELECT` (`unnest(range(n))`)
  and derives every other column from `hash(seed, stream, hour, i)` (a deterministic hash, not
  a random generator): the instant within the hour, platform, app version, country, user,
  session and JSON `properties` per event type.
- Stories a scan finds: a release (`4.12.0` ships `RELEASE_DAYS_AGO` days ago at midnight UTC and
  is adopted over a few days by the apps; `Search Performed` grows with it and the shadow event
  `Push Notification Opened` appears with it), a tracking bug (`Checkout Started` drops to 5 %
  for two days; `Order Completed` is sent with a null `currency` for three days) and shadow events
  (names the plan does not have: `Page Scrolled`, `Add To Cart Clicked`, `search_performed`).

The time span: `DAYS` whole days before the day of `end`, then that day up to `end`'s hour, so
the data reaches the present when `end` is now. Days of the stories count from that start.

Table `events`: event_id BIGINT, event_time TIMESTAMPTZ, event_type, event_name, platform (web,
ios, android), app_version (NULL on the web), country, user_id, session_id VARCHAR, properties JSON.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20240611
DAYS = 28                 # whole days before the day of `end`
RELEASE_DAYS_AGO = 12     # 4.12.0 ships at midnight UTC of day DAYS - 12
BUG_DAYS_AGO = (8, 6)     # Checkout Started drops to BUG_FACTOR on days [DAYS - 8, DAYS - 6)
NULL_DAYS_AGO = (10, 7)   # Order Completed has a null currency on days [DAYS - 10, DAYS - 7)
BUG_FACTOR = 0.05
NEW_VERSION, OLD_VERSION, OLDEST_VERSION = "4.12.0", "4.11.2", "4.10.1"
ADOPTION_MAX, ADOPTION_HOURS = 0.9, 36.0   # share of app rows on the new version: 0.9 * (1 - e^(-h/36))
SEARCH_GROWTH = 0.4       # Search Performed volume x (1 + 0.4 * adoption)
GROWTH_PER_DAY = 0.004

TABLE = "events"
BASE_QUERY = f"SELECT * FROM {TABLE}"
SCAN_CONFIG_NAME = "demo"
TIME_COLUMN = "event_time"
EVENT_TYPE_COLUMN = "event_type"
EVENT_NAME_FORMAT = "{event_name}"
BREAKDOWN_COLUMNS = ["platform"]
APP_VERSION_COLUMN = "app_version"
JSON_VALUE_PATHS = ["properties.currency", "properties.payment_method", "properties.page", "properties.query"]

# (event type, event name, mean events per hour, platforms: web | app | all). The names match
# server/domains/plan/demo_data.py (live, implemented and deprecated events) except SHADOW ones.
STREAMS: list[tuple[str, str, float, str]] = [
    ("page_view", "Page Viewed", 45.0, "web"),
    ("page_view", "Home Viewed", 20.0, "web"),
    ("page_view", "Product Page Viewed", 15.0, "web"),
    ("page_view", "Catalog Viewed", 6.0, "web"),
    ("page_view", "Legacy Landing Viewed", 0.8, "web"),
    ("screen_view", "Screen Viewed", 35.0, "app"),
    ("screen_view", "Home Screen Viewed", 14.0, "app"),
    ("screen_view", "Product Screen Viewed", 7.0, "app"),
    ("auth", "Sign Up Started", 2.0, "all"),
    ("auth", "Sign Up Completed", 1.3, "all"),
    ("auth", "Signed In", 5.0, "all"),
    ("auth", "Sign In Failed", 0.6, "all"),
    ("auth", "Signed Out", 1.5, "all"),
    ("commerce", "Product Added to Cart", 4.5, "all"),
    ("commerce", "Product Removed from Cart", 1.0, "all"),
    ("commerce", "Checkout Started", 2.5, "all"),
    ("commerce", "Payment Info Entered", 1.8, "all"),
    ("commerce", "Order Completed", 1.5, "all"),
    ("commerce", "Express Checkout Used", 0.2, "all"),
    ("search", "Search Performed", 8.0, "all"),
    ("search", "Search Result Clicked", 3.5, "all"),
    ("search", "Search No Results", 0.8, "all"),
    ("onboarding", "Onboarding Started", 1.2, "app"),
    ("onboarding", "Onboarding Step Completed", 3.0, "app"),
    ("onboarding", "Onboarding Step Skipped", 0.5, "app"),
    # shadow events: not in the plan
    ("page_view", "Page Scrolled", 12.0, "web"),
    ("commerce", "Add To Cart Clicked", 1.0, "all"),
    ("screen_view", "Push Notification Opened", 3.0, "app"),  # only with 4.12.0
    ("search", "search_performed", 0.4, "all"),
]
SHADOW = {"Page Scrolled", "Add To Cart Clicked", "Push Notification Opened", "search_performed"}

# Share of the hour's traffic by UTC hour of day, and by weekday (Monday first); mean 1 each.
_DAILY = np.array([0.35, 0.25, 0.2, 0.18, 0.2, 0.3, 0.5, 0.8, 1.05, 1.2, 1.3, 1.35,
                   1.4, 1.35, 1.3, 1.3, 1.35, 1.45, 1.55, 1.6, 1.5, 1.2, 0.85, 0.55])
DAILY = _DAILY / _DAILY.mean()
_WEEKLY = np.array([1.05, 1.08, 1.06, 1.04, 0.98, 0.8, 0.75])
WEEKLY = _WEEKLY / _WEEKLY.mean()


def _index(name: str) -> int:
    return next(i for i, s in enumerate(STREAMS) if s[1] == name)


@dataclass(frozen=True)
class Span:
    """The generated time span: `hours` hours from `start` (a midnight UTC)."""

    start: datetime
    hours: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


def span_for(end: datetime) -> Span:
    """`DAYS` whole days before `end`'s day, then that day up to `end`'s hour (UTC)."""
    end = end.astimezone(timezone.utc)
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return Span(midnight - timedelta(days=DAYS), DAYS * 24 + end.hour)


def adoption(span: Span) -> np.ndarray:
    """Share of app rows on NEW_VERSION per hour of the span."""
    since = np.arange(span.hours) - (DAYS - RELEASE_DAYS_AGO) * 24
    return np.where(since < 0, 0.0, ADOPTION_MAX * (1.0 - np.exp(-np.maximum(since, 0) / ADOPTION_HOURS)))


def cell_counts(span: Span, seed: int = SEED) -> np.ndarray:
    """Events per (stream, hour): int64 array of shape (len(STREAMS), span.hours)."""
    hours = np.arange(span.hours)
    epoch_hours = int(span.start.timestamp()) // 3600 + hours
    day = hours // 24
    weekday = (epoch_hours // 24 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    profile = DAILY[epoch_hours % 24] * WEEKLY[weekday] * (1.0 + GROWTH_PER_DAY * day)
    rates = np.array([s[2] for s in STREAMS])[:, None] * profile[None, :]
    adopted = adoption(span)
    rates[_index("Search Performed")] *= 1.0 + SEARCH_GROWTH * adopted
    rates[_index("Push Notification Opened")] *= adopted / ADOPTION_MAX
    bug = (day >= DAYS - BUG_DAYS_AGO[0]) & (day < DAYS - BUG_DAYS_AGO[1])
    rates[_index("Checkout Started"), bug] *= BUG_FACTOR
    return np.random.default_rng(seed).poisson(rates).astype(np.int64)


def daily_counts(span: Span, seed: int = SEED) -> dict[str, np.ndarray]:
    """{event name: events per generator day}, the last (partial) day included."""
    counts = cell_counts(span, seed)
    days = -(-span.hours // 24)
    padded = np.zeros((len(STREAMS), days * 24), dtype=np.int64)
    padded[:, :span.hours] = counts
    per_day = padded.reshape(len(STREAMS), days, 24).sum(axis=2)
    return {s[1]: per_day[i] for i, s in enumerate(STREAMS)}


# Per-row columns, all from hash(seed, stream, hour, i, salt): u(salt) is uniform in [0, 1).
_GENERATE = """
CREATE TABLE events AS
WITH streams AS (
  SELECT unnest($types) AS event_type, unnest($names) AS event_name, unnest($platforms) AS platforms,
         unnest(range(len($names))) AS s
), cells AS (
  SELECT unnest($cell_stream) AS s, unnest($cell_hour) AS h, unnest($cell_n) AS n
), expanded AS (
  SELECT s, h, unnest(range(n)) AS i FROM cells
), rows AS (
  SELECT x.s, x.h, x.i, st.event_type, st.event_name, st.platforms,
         (hash($seed, x.s, x.h, x.i, 'u1') % 1000000) / 1000000.0 AS u1,
         (hash($seed, x.s, x.h, x.i, 'u2') % 1000000) / 1000000.0 AS u2,
         (hash($seed, x.s, x.h, x.i, 'u3') % 1000000) / 1000000.0 AS u3,
         hash($seed, x.s, x.h, x.i, 'k') AS k,
         hash($seed, x.s, x.h, x.i, 't') % 3600000000 AS micros,
         CASE WHEN x.h < $release_h THEN 0.0
              ELSE $adoption_max * (1 - exp(-(x.h - $release_h) / $adoption_hours)) END AS adopted
  FROM expanded x JOIN streams st USING (s)
), shaped AS (
  SELECT *, CASE platforms WHEN 'web' THEN 'web'
                           WHEN 'app' THEN CASE WHEN u1 < 0.55 THEN 'ios' ELSE 'android' END
                           ELSE CASE WHEN u1 < 0.5 THEN 'web' WHEN u1 < 0.78 THEN 'ios' ELSE 'android' END
            END AS platform
  FROM rows
)
SELECT row_number() OVER (ORDER BY h, micros, s, i)::BIGINT AS event_id,
       make_timestamp(($start_epoch::BIGINT + h * 3600) * 1000000 + micros::BIGINT)::TIMESTAMPTZ AS event_time,
       event_type, event_name, platform,
       CASE WHEN platform = 'web' THEN NULL
            WHEN u2 < adopted THEN $new_version
            WHEN u2 < adopted + (1 - adopted) * 0.85 THEN $old_version
            ELSE $oldest_version END AS app_version,
       ['US', 'US', 'US', 'DE', 'GB', 'FR', 'BR', 'IN', 'CA', 'JP'][1 + (k % 10)::INT] AS country,
       'u' || lpad(((k // 10) % 20000)::VARCHAR, 5, '0') AS user_id,
       's' || ((k // 200000) % 1000000)::VARCHAR AS session_id,
       CASE event_type
         WHEN 'page_view' THEN json_object(
           'page', CASE event_name WHEN 'Home Viewed' THEN 'home' WHEN 'Product Page Viewed' THEN 'product'
                                   WHEN 'Catalog Viewed' THEN 'catalog' WHEN 'Legacy Landing Viewed' THEN 'landing_v1'
                   ELSE ['home', 'product', 'product', 'catalog', 'cart', 'checkout'][1 + ((k // 7) % 6)::INT] END,
           'referrer', ['https://www.google.com/', NULL, NULL, 'https://news.example.com/'][1 + ((k // 11) % 4)::INT],
           'scroll_depth', CASE WHEN event_name = 'Page Scrolled' THEN (25 * (1 + (k // 13) % 4))::INT END)
         WHEN 'screen_view' THEN json_object(
           'screen', CASE event_name WHEN 'Home Screen Viewed' THEN 'Home' WHEN 'Product Screen Viewed' THEN 'ProductDetail'
                                     WHEN 'Push Notification Opened' THEN 'Notification'
                     ELSE ['Home', 'ProductDetail', 'Cart', 'Profile'][1 + ((k // 7) % 4)::INT] END)
         WHEN 'auth' THEN json_object(
           'method', ['email', 'email', 'google', 'apple', 'sso'][1 + ((k // 7) % 5)::INT],
           'success', event_name <> 'Sign In Failed',
           'error_code', CASE WHEN event_name = 'Sign In Failed' THEN 'invalid_password' END)
         WHEN 'commerce' THEN json_object(
           'product_id', 'SKU-' || lpad(((k // 7) % 3000)::VARCHAR, 4, '0'),
           'price', round(5 + u3 * 120, 2),
           'currency', CASE WHEN event_name = 'Order Completed' AND h >= $null_from_h AND h < $null_to_h THEN NULL
                            ELSE ['USD', 'USD', 'EUR', 'GBP'][1 + ((k // 11) % 4)::INT] END,
           'quantity', (1 + (k // 13) % 3)::INT,
           'payment_method', CASE WHEN event_name IN ('Payment Info Entered', 'Order Completed')
                                  THEN ['card', 'card', 'paypal', 'apple_pay', 'google_pay'][1 + ((k // 17) % 5)::INT] END)
         WHEN 'search' THEN json_object(
           'query', ['running shoes', 'rain jacket', 'gift card', 'socks', 'backpack'][1 + ((k // 7) % 5)::INT],
           'search_type', 'products',
           'results_count', CASE WHEN event_name = 'Search No Results' THEN 0 ELSE (1 + (k // 11) % 48)::INT END)
         ELSE json_object(
           'step_name', ['welcome', 'profile', 'interests', 'notifications'][1 + ((k // 7) % 4)::INT],
           'step_index', (1 + (k // 7) % 4)::INT,
           'variant', ['control', 'a', 'b'][1 + ((k // 11) % 3)::INT])
       END AS properties
FROM shaped
ORDER BY event_time
"""


def write_file(path: Path, end: datetime, seed: int = SEED) -> int:
    """Write the demo warehouse to `path` (replacing it; written beside it, then renamed, so a
    reader never sees half a file). Returns the number of rows. Blocking: run it in a thread."""
    import duckdb

    span = span_for(end)
    counts = cell_counts(span, seed)
    stream_idx, hour_idx = np.nonzero(counts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    release_h = (DAYS - RELEASE_DAYS_AGO) * 24
    params: dict[str, Any] = {
        "types": [s[0] for s in STREAMS], "names": [s[1] for s in STREAMS], "platforms": [s[3] for s in STREAMS],
        "cell_stream": stream_idx.tolist(), "cell_hour": hour_idx.tolist(),
        "cell_n": counts[stream_idx, hour_idx].tolist(), "seed": seed, "start_epoch": int(span.start.timestamp()),
        "release_h": release_h, "adoption_max": ADOPTION_MAX, "adoption_hours": ADOPTION_HOURS,
        "new_version": NEW_VERSION, "old_version": OLD_VERSION, "oldest_version": OLDEST_VERSION,
        "null_from_h": (DAYS - NULL_DAYS_AGO[0]) * 24, "null_to_h": (DAYS - NULL_DAYS_AGO[1]) * 24,
    }
    try:
        con = duckdb.connect(str(tmp), config={"threads": 2})
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(_GENERATE, params)
            rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return int(rows)


# --- the rows `projectCreateDemo` adds -----------------------------------------------------------

DATA_SOURCE_NAME = "Demo warehouse"


@dataclass
class DemoWarehouse:
    """What `add_to_demo` wrote: the data source and scan config rows (in the caller's
    transaction), the first scan's job (None when no scan could be queued), and the file."""

    data_source: Any
    scan_config: Any
    job: Any
    path: Path
    rows: int

    def discard(self) -> None:
        """The transaction failed: remove the file nobody will name."""
        self.path.unlink(missing_ok=True)


def file_name(project_id: uuid.UUID) -> str:
    return f"demo-{project_id}.duckdb"


async def add_to_demo(uow: Any, rt: Any, principal: Any, project: Any, now: datetime) -> DemoWarehouse:
    """Write the demo warehouse file of `project` (in a thread), then add its DUCKDB data source,
    the scan config `demo` and the first scan job to the caller's unit of work (one INSERT each).
    The data source is the organization's like any other (owners may rename or delete it); it is
    created here for editors too, since it only names a file the server generated. On a failure
    of the caller's transaction, call `discard()` (the file is then removed)."""
    import asyncio

    from sqlalchemy import func, select

    from server.domains.plan.demo import first_free
    from server.domains.warehouse import scan_configs
    from server.domains.warehouse.data_sources import duckdb_dir_for
    from server.domains.warehouse.models import (DataSource, DataSourceType, ScanConfig, ScanInterval, ScanJob,
                                                 ScanJobKind)
    from server.jobs import service as jobs

    s = uow.session
    name = file_name(project.id)
    path = duckdb_dir_for(rt.settings, project.organization_id) / name
    rows = await asyncio.to_thread(write_file, path, now)
    try:
        base = f"{DATA_SOURCE_NAME} ({project.slug})"[:240]
        taken = set((await s.execute(select(func.lower(DataSource.name)).where(
            DataSource.organization_id == project.organization_id,
            func.lower(DataSource.name).like(base.lower().replace("%", r"\%").replace("_", r"\_") + "%")))).scalars())
        ds_name = first_free(base.lower(), taken)
        ds_name = base + ds_name[len(base):]
        ds = DataSource(id=uuid.uuid4(), organization_id=project.organization_id, name=ds_name,
                        db_type=DataSourceType.DUCKDB, host="", port=None, database_name=name, username="",
                        password_encrypted=None, timeout_seconds=None, extra_params={}, created_by_id=principal.user_id,
                        created_at=now, updated_at=now)
        s.add(ds)
        span = span_for(now)
        # Weekly chunks: the first scan is 5 chunks, newest first, so the charts' default range
        # (7 days) is written after the first two (bench/demo_first_scan.py).
        values = scan_configs.validate_values({
            "name": SCAN_CONFIG_NAME, "base_query": BASE_QUERY, "event_type_column": EVENT_TYPE_COLUMN,
            "time_column": TIME_COLUMN, "event_name_format": EVENT_NAME_FORMAT, "json_value_paths": JSON_VALUE_PATHS,
            "metric_breakdown_columns": BREAKDOWN_COLUMNS, "metric_breakdown_values_limit": 10,
            "interval": ScanInterval.ONE_HOUR, "replay_chunk_interval": ScanInterval.ONE_WEEK,
            "scan_lookback_hours": span.hours + 1, "app_version_column": APP_VERSION_COLUMN,
            "app_version_keep_releases": 5})
        config = ScanConfig(
            id=uuid.uuid4(), organization_id=project.organization_id, project_id=project.id, data_source_id=ds.id,
            event_type_id=None, name=values.name, base_query=values.base_query,
            event_type_column=values.event_type_column, time_column=values.time_column,
            event_name_format=values.event_name_format, json_value_paths=values.json_value_paths,
            event_group_rules=values.event_group_rules, metric_breakdown_columns=values.metric_breakdown_columns,
            metric_breakdown_values_limit=values.metric_breakdown_values_limit,
            distribution_drift_fields=values.distribution_drift_fields,
            cardinality_threshold=values.cardinality_threshold, interval=values.interval,
            replay_chunk_interval=values.replay_chunk_interval, scan_lookback_hours=values.scan_lookback_hours,
            scan_row_limit=None, metrics_row_limit=None, app_version_column=values.app_version_column,
            app_version_keep_releases=values.app_version_keep_releases, enabled=True,
            # The first scan is queued below; the scheduler takes over an interval later.
            next_run_at=now + values.interval.delta, created_by_id=principal.user_id, created_at=now, updated_at=now)
        s.add(config)
        await s.flush()
        if not rt.settings.warehouse_demo_first_scan:
            return DemoWarehouse(ds, config, None, path, rows)  # the scheduler scans it an interval later
        # The first scan, as scan_configs.request_scan makes it (the job row flushed before the
        # scan job row that refers to it: the two models have no relationship to order them).
        scan_job_id = uuid.uuid4()
        job = jobs.create_job(uow, rt, kind=scan_configs.SCAN_KIND, organization_id=project.organization_id,
                              requested_by_id=principal.user_id, queue=scan_configs.QUEUE, subject_type="ScanConfig",
                              subject_id=str(config.id), max_attempts=1,
                              payload={"scanConfigId": str(config.id), "scanJobId": str(scan_job_id), "demo": True})
        await s.flush()
        s.add(ScanJob(id=scan_job_id, organization_id=project.organization_id, project_id=project.id,
                      scan_config_id=config.id, data_source_id=ds.id, job_id=job.id, kind=ScanJobKind.SCAN,
                      stats={}, requested_by_id=principal.user_id, created_at=now))
        await s.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return DemoWarehouse(ds, config, job, path, rows)


__all__ = [
    "APP_VERSION_COLUMN", "BASE_QUERY", "BREAKDOWN_COLUMNS", "DATA_SOURCE_NAME", "DAYS", "DemoWarehouse",
    "EVENT_NAME_FORMAT", "EVENT_TYPE_COLUMN", "JSON_VALUE_PATHS", "SCAN_CONFIG_NAME", "SEED", "SHADOW", "STREAMS",
    "Span", "TIME_COLUMN", "add_to_demo", "adoption", "cell_counts", "daily_counts", "file_name", "span_for",
    "write_file",
]
