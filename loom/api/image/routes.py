"""The image API's route table."""

from __future__ import annotations

from loom.api.http import Endpoint as E
from loom.api.image import data, images, members, schemas, versions

V2 = "/v2"

ENDPOINTS = [
    E("GET", "/", versions.versions, auth=False),
    E("GET", "/versions", versions.versions, auth=False),
    E("GET", V2 + "/schemas/{name}", schemas.show),
    E("GET", V2 + "/images", images.list_),
    E("POST", V2 + "/images", images.create),
    E("GET", V2 + "/images/{image_id}", images.show),
    E("PATCH", V2 + "/images/{image_id}", images.update),
    E("DELETE", V2 + "/images/{image_id}", images.delete),
    E("PUT", V2 + "/images/{image_id}/file", data.upload),
    E("GET", V2 + "/images/{image_id}/file", data.download),
    E("POST", V2 + "/images/{image_id}/actions/deactivate", images.deactivate),
    E("POST", V2 + "/images/{image_id}/actions/reactivate", images.reactivate),
    E("PUT", V2 + "/images/{image_id}/tags/{tag}", images.tag),
    E("DELETE", V2 + "/images/{image_id}/tags/{tag}", images.tag),
    E("GET", V2 + "/images/{image_id}/members", members.list_),
    E("POST", V2 + "/images/{image_id}/members", members.create),
    E("GET", V2 + "/images/{image_id}/members/{member_id}", members.show),
    E("PUT", V2 + "/images/{image_id}/members/{member_id}", members.update),
    E("DELETE", V2 + "/images/{image_id}/members/{member_id}", members.delete),
]
