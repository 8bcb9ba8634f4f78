"""Nova HTTP handlers of the fake (under /compute/v2.1)."""

from __future__ import annotations

import re
from typing import Any

from tests.fake_openstack import nova, views
from tests.fake_openstack.model import ApiError, Server
from tests.fake_openstack.routing import Ctx, Reply, page, parse_time

COMPUTE_MIN = (2, 1)


def versions(ctx: Ctx) -> Reply:
    root = ctx.origin + "/compute"
    return 200, {"versions": [_v20(root), _v21(ctx, root)]}


def version(ctx: Ctx) -> Reply:
    body = _v21(ctx, ctx.origin + "/compute")
    body["media-types"] = [
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
    ]
    return 200, {"version": body}


def _v20(root: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "links": [{"href": f"{root}/v2/", "rel": "self"}],
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
    }


def _v21(ctx: Ctx, root: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "links": [{"href": f"{root}/v2.1/", "rel": "self"}],
        "status": "CURRENT",
        "version": ctx.max_version,
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
    }


# flavors


def list_flavors(ctx: Ctx) -> Reply:
    flavors = sorted(ctx.cloud.flavors.values(), key=lambda f: f.id)
    items, links = page(ctx, flavors, "flavors")
    detail = ctx.path.endswith("/detail")
    render = views.flavor_detail if detail else views.flavor_summary
    body: dict[str, Any] = {"flavors": [render(f, ctx.base, ctx.mv) for f in items]}
    if links:
        body["flavors_links"] = links
    return 200, body


def show_flavor(ctx: Ctx) -> Reply:
    flavor = ctx.cloud.flavors.get(ctx.params["id"])
    if flavor is None:
        raise ApiError(404, f"Flavor {ctx.params['id']} could not be found.")
    return 200, {"flavor": views.flavor_detail(flavor, ctx.base, ctx.mv)}


# servers


def _filter_servers(ctx: Ctx) -> list[Server]:
    servers = list(ctx.cloud.servers.values())
    since = ctx.q("changes-since")
    if since is not None:
        threshold = parse_time(since, "changes-since")
        servers = [s for s in servers if s.updated >= threshold]  # deleted ones included
    else:
        servers = [s for s in servers if not s.deleted]
    if (name := ctx.q("name")) is not None:
        try:
            pattern = re.compile(name)
        except re.error:
            raise ApiError(400, f"Invalid name filter: {name}") from None
        servers = [s for s in servers if pattern.search(s.name)]
    if (status := ctx.q("status")) is not None:
        servers = [s for s in servers if s.status == status.upper()]
    if (tags := ctx.q("tags")) is not None and ctx.mv >= (2, 26):
        wanted = set(tags.split(","))
        servers = [s for s in servers if wanted <= set(s.tags)]
    if (tags_any := ctx.q("tags-any")) is not None and ctx.mv >= (2, 26):
        wanted = set(tags_any.split(","))
        servers = [s for s in servers if wanted & set(s.tags)]
    return sorted(servers, key=lambda s: (s.created, s.id), reverse=True)


def list_servers(ctx: Ctx) -> Reply:
    items, links = page(ctx, _filter_servers(ctx), "servers")
    if ctx.path.endswith("/detail"):
        rendered = [views.server_detail(s, ctx.base, ctx.mv) for s in items]
    else:
        rendered = [views.server_summary(s, ctx.base) for s in items]
    body: dict[str, Any] = {"servers": rendered}
    if links:
        body["servers_links"] = links
    return 200, body


def create_server(ctx: Ctx) -> Reply:
    server = nova.create_server(ctx.cloud, ctx.body, ctx.mv)
    body = {
        "id": server.id,
        "links": views.server_summary(server, ctx.base)["links"],
        "OS-DCF:diskConfig": "AUTO",
        "security_groups": [{"name": "default"}],
        "adminPass": server.admin_pass,
    }
    return 202, {"server": body}


def show_server(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    return 200, {"server": views.server_detail(server, ctx.base, ctx.mv)}


def update_server(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    spec = ctx.body.get("server") if isinstance(ctx.body, dict) else None
    if not isinstance(spec, dict) or set(spec) - {"name", "description"}:
        raise ApiError(400, "Invalid input for field/attribute server.")
    if "name" in spec:
        name = spec["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "Invalid input for field/attribute name.")
        server.name = name
    if "description" in spec:
        server.description = spec["description"]
    server.updated = ctx.cloud.now()
    return 200, {"server": views.server_detail(server, ctx.base, ctx.mv)}


def delete_server(ctx: Ctx) -> Reply:
    nova.delete_server(ctx.cloud, ctx.cloud.server(ctx.params["id"]))
    return 204, None


def server_action(ctx: Ctx) -> Reply:
    status = nova.server_action(ctx.cloud, ctx.cloud.server(ctx.params["id"]), ctx.body)
    return status, None


# volume attachments


def list_attachments(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    items = [views.attachment(server, b, ctx.mv) for b in server.bdms]
    return 200, {"volumeAttachments": items}


def show_attachment(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    for bdm in server.bdms:
        if bdm.volume_id == ctx.params["volume_id"]:
            return 200, {"volumeAttachment": views.attachment(server, bdm, ctx.mv)}
    raise ApiError(404, f"Volume {ctx.params['volume_id']} is not attached to instance {server.id}")


def create_attachment(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    bdm = nova.attach_volume(ctx.cloud, server, ctx.body)
    return 200, {"volumeAttachment": views.attachment(server, bdm, ctx.mv)}


def delete_attachment(ctx: Ctx) -> Reply:
    server = ctx.cloud.server(ctx.params["id"])
    nova.detach_volume(ctx.cloud, server, ctx.params["volume_id"])
    return 202, None


S = r"/compute/v2\.1/servers/(?P<id>[^/]+)"
ROUTES = [
    ("GET", r"/compute/?", versions),
    ("GET", r"/compute/v2\.1/?", version),
    ("GET", r"/compute/v2\.1/flavors(/detail)?", list_flavors),
    ("GET", r"/compute/v2\.1/flavors/(?P<id>[^/]+)", show_flavor),
    ("GET", r"/compute/v2\.1/servers(/detail)?", list_servers),
    ("POST", r"/compute/v2\.1/servers", create_server),
    ("GET", S, show_server),
    ("PUT", S, update_server),
    ("DELETE", S, delete_server),
    ("POST", S + "/action", server_action),
    ("GET", S + "/os-volume_attachments", list_attachments),
    ("POST", S + "/os-volume_attachments", create_attachment),
    ("GET", S + "/os-volume_attachments/(?P<volume_id>[^/]+)", show_attachment),
    ("DELETE", S + "/os-volume_attachments/(?P<volume_id>[^/]+)", delete_attachment),
]
