"""Photo storage for real: the local backend on disk, the service's "file first, then the row, and
the file taken back when the row fails" order against the real database, and the S3 backend
against a real S3 HTTP server on loopback (moto's server mode, an external vendor stand-in that
speaks the S3 protocol), through the live API. GCS runs the same obstore code path with another
store class; no GCS server installable from PyPI is available here, so it is not exercised."""

from __future__ import annotations

import uuid

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from server.domains.accounts.models import Role
from server.domains.plan import photos
from server.domains.plan.models import EventPhoto
from server.domains.plan.photo_storage import PhotoStorage, StorageUnavailable, StoredObjectMissing
from server.runtime import Runtime
from server.security.principal import Principal
from tests.conftest import make_settings
from tests.graph.plan.helpers import Org
from tests.graph.plan.photo_ops import EVENT_PHOTOS, PhotoPlan, png, upload, upload_raw
from tests.graph.plan.photo_ops import DELETE as PHOTO_DELETE
from tests.graph.plan.helpers import DELETE as PROJECT_DELETE
from tests.support.client import GQL
from tests.support.live import free_port
from tests.support.plan_rows import raw


async def test_local_backend_put_read_delete(tmp_path):
    storage = PhotoStorage(make_settings(tmp_path))
    assert storage.backend == "local"
    await storage.put("o/p/e/x.png", png(), "image/png")
    assert (tmp_path / "photos" / "o" / "p" / "e" / "x.png").read_bytes() == png()
    assert await storage.read("local", "o/p/e/x.png") == png()
    download = await storage.open("local", "o/p/e/x.png")
    assert download.size == len(png())
    await storage.delete("local", "o/p/e/x.png")
    assert not (tmp_path / "photos" / "o" / "p" / "e" / "x.png").exists()
    await storage.delete("local", "o/p/e/x.png")  # already gone: fine
    with pytest.raises(StoredObjectMissing):
        await storage.open("local", "o/p/e/x.png")
    with pytest.raises(StorageUnavailable):  # stored in a bucket backend that is not configured
        await storage.open("s3", "o/p/e/x.png")


async def test_a_failing_insert_takes_the_file_back(gql, settings, database_url, redis_url):
    """The row cannot be written (its uploader does not exist: a foreign key violation raised by
    PostgreSQL at insert time, after the file was stored): the file must be deleted again."""
    org = await Org.create(gql)
    plan = await PhotoPlan.create(org)
    rt = Runtime.create(settings, database_url, redis_url)
    try:
        organization = raw(org.org_id)
        ghost = Principal(user_id=uuid.uuid4(), email="ghost@example.com", roles={organization: Role.editor})
        root = settings.photos_dir / str(organization)
        with pytest.raises(IntegrityError):
            await photos.upload_photo(rt, ghost, raw(plan.event), data=png(), filename="a.png",
                                      declared_type="image/png")
        assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]
        async with rt.db.session() as s:
            count = (await s.execute(select(func.count()).select_from(EventPhoto)
                                     .where(EventPhoto.event_id == raw(plan.event)))).scalar()
        assert count == 0
    finally:
        await rt.close()


# --- S3 ------------------------------------------------------------------------------------------

BUCKET = "insights-photos"
PREFIX = "tenant-a/photos"


@pytest.fixture(scope="module")
def s3():  # noqa: ANN201
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def s3_live(start_server, s3):  # noqa: ANN001, ANN201
    endpoint, _ = s3
    return start_server(photo_storage_backend="s3", photo_storage_bucket=BUCKET, photo_storage_prefix=PREFIX,
                        photo_storage_endpoint=endpoint, photo_storage_region="us-east-1",
                        photo_storage_access_key_id="test", photo_storage_secret_access_key="test")


def _keys(client) -> dict[str, str]:  # noqa: ANN001
    """key -> content type of every object in the bucket."""
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.head_object(Bucket=BUCKET, Key=o["Key"])["ContentType"] for o in listed}


async def test_s3_backend_upload_download_delete(s3, s3_live):
    _, client = s3
    gql = GQL(s3_live.url)
    org = await Org.create(gql)
    plan = await PhotoPlan.create(org)
    image = png(6, 6, seed=11)
    async with httpx.AsyncClient(base_url=s3_live.url, timeout=30) as http:
        before = set(_keys(client))
        photo = (await upload(http, org.token, plan.event, image))["photo"]
        assert photo["storageBackend"] == "s3"
        added = {k: t for k, t in _keys(client).items() if k not in before}
        (key, content_type), = added.items()
        assert key.startswith(f"{PREFIX}/{raw(org.org_id)}/{raw(plan.project)}/{raw(plan.event)}/") and key.endswith(".png")
        assert content_type == "image/png"
        assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == image

        got = await http.get(photo["url"], headers={"authorization": f"Bearer {org.token}"})
        assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"

        r = await http.post(f"/api/v1/events/{plan.event}/photos", content=image,
                            headers={"content-type": "image/png", "authorization": f"Bearer {org.token}"})
        assert r.status_code == 201 and r.json()["storageBackend"] == "s3"
        assert len(_keys(client)) == len(before) + 2

        data = await org(PHOTO_DELETE, {"input": {"id": photo["id"]}})
        assert data["eventPhotoDelete"]["userErrors"] == []
        assert key not in _keys(client)

        # Deleting the project takes the rest of its files with it.
        await upload(http, org.token, plan.event, png(seed=12))
        assert len(_keys(client)) == len(before) + 2
        data = await org(PROJECT_DELETE, {"input": {"id": plan.project}})
        assert data["projectDelete"]["userErrors"] == []
        assert set(_keys(client)) == before
    await gql.aclose()


async def test_unreachable_storage_is_503_and_stores_no_row(start_server):
    down = start_server(photo_storage_backend="s3", photo_storage_bucket=BUCKET,
                        photo_storage_endpoint=f"http://127.0.0.1:{free_port()}", photo_storage_region="us-east-1",
                        photo_storage_access_key_id="test", photo_storage_secret_access_key="test")
    gql = GQL(down.url)
    org = await Org.create(gql)
    plan = await PhotoPlan.create(org)
    async with httpx.AsyncClient(base_url=down.url, timeout=60) as http:
        r = await http.post(f"/api/v1/events/{plan.event}/photos", content=png(),
                            headers={"content-type": "image/png", "authorization": f"Bearer {org.token}"})
        assert r.status_code == 503 and r.json()["code"] == "UNAVAILABLE", r.text
        r = await upload_raw(http, org.token, plan.event, png())
        assert r.status_code == 200 and r.json()["errors"] and r.json()["data"] is None  # masked internal error
    assert (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"] == []
    await gql.aclose()


def test_bucket_backends_are_configured_from_the_settings(tmp_path):
    """GCS cannot be exercised end to end here (no GCS server speaking the XML object API that
    obstore uses installs from PyPI); its store must at least be built from the settings."""
    import json

    key = json.dumps({"gcs_base_url": "http://127.0.0.1:1", "disable_oauth": True, "client_email": "",
                      "private_key": "", "private_key_id": ""})
    gcs = PhotoStorage(make_settings(tmp_path, photo_storage_backend="gcs", photo_storage_bucket="shots",
                                     photo_storage_prefix="/a/b/", photo_storage_endpoint="http://127.0.0.1:4443/",
                                     photo_storage_gcs_credentials=key))
    store = gcs._stores["gcs"]
    assert (store.config["bucket"], store.config["base_url"], store.config["service_account_key"],
            store.prefix) == ("shots", "http://127.0.0.1:4443", key, "a/b")
    s3 = PhotoStorage(make_settings(tmp_path, photo_storage_backend="s3", photo_storage_bucket="shots",
                                    photo_storage_region="eu-west-1"))
    assert s3._stores["s3"].config["region"] == "eu-west-1" and "endpoint" not in s3._stores["s3"].config
    with pytest.raises(RuntimeError, match="BUCKET"):
        PhotoStorage(make_settings(tmp_path, photo_storage_backend="s3"))
