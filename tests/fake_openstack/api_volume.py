"""Cinder (under /volume/v3/{project_id}) and Glance (under /image) HTTP handlers of the fake."""

from __future__ import annotations

from typing import Any

from tests.fake_openstack import cinder, views
from tests.fake_openstack.model import ApiError
from tests.fake_openstack.routing import Ctx, Reply, page

_LIST_PARAMS = {
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "offset",
    "with_count",
    "name",
    "status",
    "metadata",
    "all_tenants",
}


def _v3(ctx: Ctx) -> dict[str, Any]:
    return {
        "id": "v3.0",
        "links": [
            {"href": "https://docs.openstack.org/", "rel": "describedby", "type": "text/html"},
            {"href": f"{ctx.origin}/volume/v3/", "rel": "self"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ],
        "min_version": "3.0",
        "status": "CURRENT",
        "updated": "2023-08-31T00:00:00Z",
        "version": ctx.max_version,
    }


def volume_versions(ctx: Ctx) -> Reply:
    return 300, {"versions": [_v3(ctx)]}


def volume_version(ctx: Ctx) -> Reply:
    return 200, {"versions": [_v3(ctx)]}


def list_volumes(ctx: Ctx) -> Reply:
    unknown = set(ctx.query) - _LIST_PARAMS
    if unknown:
        raise ApiError(
            400, f"Invalid filters {', '.join(sorted(unknown))} are found in query options."
        )
    volumes = cinder.filter_volumes(
        list(ctx.cloud.volumes.values()),
        {k: v[-1] for k, v in ctx.query.items() if k in ("name", "status", "metadata")},
    )
    volumes.sort(key=lambda v: (v.created, v.id), reverse=True)
    items, links = page(ctx, volumes, "volumes")
    if ctx.path.endswith("/detail"):
        rendered = [views.volume_detail(v, ctx.base, ctx.mv) for v in items]
    else:
        rendered = [views.volume_summary(v, ctx.base) for v in items]
    body: dict[str, Any] = {"volumes": rendered}
    if links:
        body["volumes_links"] = links
    return 200, body


def create_volume(ctx: Ctx) -> Reply:
    volume = cinder.create_volume(ctx.cloud, ctx.body)
    return 202, {"volume": views.volume_detail(volume, ctx.base, ctx.mv)}


def show_volume(ctx: Ctx) -> Reply:
    volume = ctx.cloud.volume(ctx.params["id"])
    return 200, {"volume": views.volume_detail(volume, ctx.base, ctx.mv)}


def delete_volume(ctx: Ctx) -> Reply:
    cinder.delete_volume(ctx.cloud, ctx.cloud.volume(ctx.params["id"]))
    return 202, None


def volume_action(ctx: Ctx) -> Reply:
    cinder.volume_action(ctx.cloud, ctx.cloud.volume(ctx.params["id"]), ctx.body, ctx.mv)
    return 202, None


# Glance


def _image_versions(ctx: Ctx) -> list[dict[str, Any]]:
    return [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == 16 else "SUPPORTED",
            "links": [{"href": f"{ctx.origin}/image/v2/", "rel": "self"}],
        }
        for minor in (16, 15, 9, 0)
    ]


def image_versions(ctx: Ctx) -> Reply:
    return 300, {"versions": _image_versions(ctx)}


def image_versions_ok(ctx: Ctx) -> Reply:
    return 200, {"versions": _image_versions(ctx)}


def list_images(ctx: Ctx) -> Reply:
    images = sorted(ctx.cloud.images.values(), key=lambda i: (i.created, i.id), reverse=True)
    if (name := ctx.q("name")) is not None:
        images = [i for i in images if i.name == name]
    if ctx.q("limit") is None:
        ctx.query["limit"] = ["25"]
    items, links = page(ctx, images, "images")
    body: dict[str, Any] = {
        "images": [views.image(i) for i in items],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if links:
        body["next"] = "/v2/images?" + links[0]["href"].split("?", 1)[1]
    return 200, body


def show_image(ctx: Ctx) -> Reply:
    image = ctx.cloud.images.get(ctx.params["id"])
    if image is None:
        raise ApiError(404, f"No image found with ID {ctx.params['id']}")
    return 200, views.image(image)


V = r"/volume/v3/(?P<project_id>[^/]+)/volumes"
ROUTES = [
    ("GET", r"/volume/?", volume_versions),
    ("GET", r"/volume/v3/?", volume_version),
    ("GET", V + "(/detail)?", list_volumes),
    ("POST", V, create_volume),
    ("GET", V + "/(?P<id>[^/]+)", show_volume),
    ("DELETE", V + "/(?P<id>[^/]+)", delete_volume),
    ("POST", V + "/(?P<id>[^/]+)/action", volume_action),
]
IMAGE_ROUTES = [
    ("GET", r"/image/?", image_versions),
    ("GET", r"/image/versions/?", image_versions_ok),
    ("GET", r"/image/v2/images", list_images),
    ("GET", r"/image/v2/images/(?P<id>[^/]+)", show_image),
]
