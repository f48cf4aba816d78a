"""Default policy rules of the image API. Visibility (who sees which
image) and ownership (who may change it) are checked in the image code;
these rules say which roles may act at all."""

from __future__ import annotations

from loom.policy.enforcer import ADMIN, Rule

MEMBER = f"{ADMIN} or role:member"
ANY = ""

RULES = [
    Rule("image:get_images", ANY, "List images."),
    Rule("image:get_image", ANY, "Show an image."),
    Rule("image:add_image", MEMBER, "Create an image."),
    Rule("image:modify_image", MEMBER, "Update an image."),
    Rule("image:delete_image", MEMBER, "Delete an image."),
    Rule("image:upload_image", MEMBER, "Upload image data."),
    Rule("image:download_image", ANY, "Download image data."),
    Rule("image:publicize_image", ADMIN, "Make an image public."),
    Rule("image:communitize_image", MEMBER, "Make an image community."),
    Rule("image:set_owner", ADMIN, "Create an image for another project."),
    Rule("image:deactivate", ADMIN, "Deactivate an image."),
    Rule("image:reactivate", ADMIN, "Reactivate an image."),
    Rule("image:add_member", MEMBER, "Share an image with a project."),
    Rule("image:delete_member", MEMBER, "Stop sharing an image with a project."),
    Rule("image:modify_member", MEMBER, "Accept or reject a shared image."),
    Rule("image:get_members", ANY, "List the projects an image is shared with."),
]
