"""Where the bytes of event photos live: local disk (default), S3 or an S3-compatible service, or
Google Cloud Storage, chosen by `INSIGHTS_PHOTO_STORAGE_BACKEND` (server/settings.py).

The storage library is **obstore** (Python bindings of the Rust `object_store` crate of the Apache
Arrow project, the one DataFusion, Polars and delta-rs use). Chosen over the alternatives because:

- one API for the three backends we need (local files, S3 and everything speaking its protocol,
  GCS; Azure too), so every backend runs the same code path and the local one tested here is the
  one production runs;
- it is natively asynchronous (`put_async`, `get_async` with a streamed body, `delete_async`):
  no thread pool around a blocking SDK (apache-libcloud is synchronous), and downloads stream in
  chunks instead of being read whole;
- a single self-contained wheel with no Python dependencies. fsspec + s3fs + gcsfs would bring
  aiobotocore (which pins botocore exactly), aiohttp and google-auth, three release trains to keep
  in step with our pins;
- credentials come from the standard chains when not given (AWS environment, web identity,
  ECS/EC2 roles; Google application default credentials); uploads and reads retry with backoff.

Keys are `{organization}/{project}/{event}/{photo}.{ext}` under the configured prefix (bucket
backends) or directory (local). A row remembers its backend, so after switching backends the
photos already stored on local disk stay readable; those stored in another bucket backend are
reported as unavailable rather than silently looked up in the wrong place.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import obstore
from obstore.store import GCSStore, LocalStore, S3Store

from server.runtime import Runtime
from server.settings import Settings

log = logging.getLogger("insights.plan.photos")

CHUNK = 256 * 1024
_CLIENT = {"connect_timeout": timedelta(seconds=5), "timeout": timedelta(seconds=60)}
_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}


class StorageUnavailable(Exception):
    """The storage backend failed or is not configured for this object (not the client's fault)."""


class StoredObjectMissing(Exception):
    """The row exists but its bytes are gone (deleted by hand, lost bucket)."""


@dataclass
class Download:
    size: int
    chunks: AsyncIterator[bytes]


def object_key(organization_id: uuid.UUID, project_id: uuid.UUID, event_id: uuid.UUID, photo_id: uuid.UUID,
               extension: str) -> str:
    return f"{organization_id}/{project_id}/{event_id}/{photo_id}.{extension}"


def _bucket_store(settings: Settings) -> Any:
    backend = settings.photo_storage_backend
    if not settings.photo_storage_bucket:
        raise RuntimeError(f"INSIGHTS_PHOTO_STORAGE_BUCKET must be set for the `{backend}` photo backend")
    prefix = (settings.photo_storage_prefix or "").strip("/") or None
    endpoint = settings.photo_storage_endpoint
    client = dict(_CLIENT, allow_http=bool(endpoint and endpoint.startswith("http://")))
    if backend == "s3":
        config: dict[str, Any] = {}
        if endpoint:
            config.update(endpoint=endpoint.rstrip("/"), virtual_hosted_style_request=False)
        if settings.photo_storage_region:
            config["region"] = settings.photo_storage_region
        if settings.photo_storage_access_key_id:
            config.update(access_key_id=settings.photo_storage_access_key_id,
                          secret_access_key=settings.photo_storage_secret_access_key or "")
        return S3Store(settings.photo_storage_bucket, prefix=prefix, config=config, client_options=client,
                       retry_config=_RETRY)
    config = {}
    if endpoint:
        config["base_url"] = endpoint.rstrip("/")
    credentials = (settings.photo_storage_gcs_credentials or "").strip()
    if credentials.startswith("{"):
        config["service_account_key"] = credentials
    elif credentials:
        config["service_account"] = credentials
    return GCSStore(settings.photo_storage_bucket, prefix=prefix, config=config, client_options=client,
                    retry_config=_RETRY)


class PhotoStorage:
    """The configured backend (`backend`, where new photos go) plus the local one for reading and
    deleting photos stored before a switch."""

    def __init__(self, settings: Settings):
        self.backend: str = settings.photo_storage_backend
        directory = settings.photos_dir.expanduser().resolve()
        self._local_dir = directory
        self._stores: dict[str, Any] = {}
        self._local: LocalStore | None = None
        if self.backend != "local":
            self._stores[self.backend] = _bucket_store(settings)

    def _store(self, backend: str) -> Any:
        if backend == "local":
            if self._local is None:
                self._local_dir.mkdir(parents=True, exist_ok=True)
                self._local = LocalStore(self._local_dir, automatic_cleanup=True)
            return self._local
        store = self._stores.get(backend)
        if store is None:
            raise StorageUnavailable(f"this photo is stored in `{backend}`, which is not the configured photo backend")
        return store

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` in the configured backend (S3/GCS objects carry their
        Content-Type; the local backend has no per-file attributes)."""
        store = self._store(self.backend)
        attributes = None if self.backend == "local" else {"Content-Type": content_type}
        try:
            await obstore.put_async(store, key, data, attributes=attributes)
        except Exception as e:
            raise StorageUnavailable(f"could not store the photo: {e.__class__.__name__}") from e

    async def open(self, backend: str, key: str) -> Download:
        store = self._store(backend)
        try:
            result = await obstore.get_async(store, key)
        except FileNotFoundError as e:
            raise StoredObjectMissing(key) from e
        except Exception as e:
            raise StorageUnavailable(f"could not read the photo: {e.__class__.__name__}") from e

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)

        return Download(size=int(result.meta["size"]), chunks=chunks())

    async def read(self, backend: str, key: str) -> bytes:
        download = await self.open(backend, key)
        return b"".join([c async for c in download.chunks])

    async def delete(self, backend: str, key: str) -> None:
        """Remove an object; one already gone is fine."""
        try:
            await obstore.delete_async(self._store(backend), key)
        except FileNotFoundError:
            pass

    async def delete_quietly(self, backend: str | None, key: str | None) -> None:
        """For clean-ups after the fact (a failed insert, a committed delete): log, never raise."""
        if not backend or not key:
            return
        try:
            await self.delete(backend, key)
        except Exception:
            log.exception("could not delete photo object %s from %s (left behind)", key, backend)


def photo_storage(rt: Runtime) -> PhotoStorage:
    """The runtime's storage, built on first use (so a misconfigured bucket fails the first photo
    request with a logged error, not the start of the whole server)."""
    storage = rt.extras.get("photo_storage")
    if storage is None:
        try:
            storage = PhotoStorage(rt.settings)
        except Exception as e:  # a missing bucket name, an unreadable credentials file, ...
            log.error("the photo storage is misconfigured: %s", e)
            raise StorageUnavailable(f"the photo storage is misconfigured: {e.__class__.__name__}") from e
        rt.extras["photo_storage"] = storage
    return storage


__all__ = ["Download", "PhotoStorage", "StorageUnavailable", "StoredObjectMissing", "object_key", "photo_storage"]
