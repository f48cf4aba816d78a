"""From a request spec to placement's question; no database."""

from __future__ import annotations

import pytest

from loom.errors import Invalid
from loom.placement.request import UNNUMBERED
from loom.scheduler.placement_request import candidate_request, describe
from loom.scheduler.request import FlavorSpec, RequestSpec


def spec(extra_specs: dict[str, str] | None = None, **fields: object) -> RequestSpec:
    flavor = FlavorSpec("1", "m1.small", 2, 2048, 20, ephemeral_gb=5, swap=1536, extra_specs=extra_specs or {})
    return RequestSpec(project_id="p", user_id="u", flavor=flavor, **fields)  # type: ignore[arg-type]


def test_the_flavor_gives_vcpu_memory_and_disk() -> None:
    request = candidate_request(spec(), limit=50)
    assert request.limit == 50 and list(request.groups) == [UNNUMBERED]
    assert dict(request.groups[UNNUMBERED].resources) == {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 27}
    assert describe(request) == "VCPU=2 MEMORY_MB=2048 DISK_GB=27"


def test_boot_from_volume_leaves_the_root_disk_out() -> None:
    assert candidate_request(spec(is_bfv=True)).groups[UNNUMBERED].resources["DISK_GB"] == 7


def test_resources_extra_specs_override_add_and_remove() -> None:
    request = candidate_request(spec({"resources:VCPU": "4", "resources:DISK_GB": "0",
                                      "resources:CUSTOM_MAGIC": "1", "hw:cpu_policy": "shared"}))
    assert dict(request.groups[UNNUMBERED].resources) == {"VCPU": 4, "MEMORY_MB": 2048, "CUSTOM_MAGIC": 1}


def test_traits_from_flavor_and_image() -> None:
    request = candidate_request(spec({"trait:HW_CPU_X86_AVX": "required", "trait:CUSTOM_SLOW": "forbidden",
                                      "trait:CUSTOM_ODD": "maybe"},
                                     image={"properties": {"trait:CUSTOM_IMG": "required",
                                                           "trait:CUSTOM_NO": "forbidden"}}))
    traits = request.groups[UNNUMBERED].traits
    assert traits.required == {"HW_CPU_X86_AVX", "CUSTOM_IMG"}
    assert traits.forbidden == {"CUSTOM_SLOW"}
    assert describe(request).endswith("with CUSTOM_IMG, HW_CPU_X86_AVX without CUSTOM_SLOW")


def test_granular_groups_and_group_policy() -> None:
    request = candidate_request(spec({"resources1:VGPU": "1", "trait1:CUSTOM_A100": "required",
                                      "resources_NIC:SRIOV_NET_VF": "2", "group_policy": "isolate"}))
    assert request.group_policy == "isolate"
    assert dict(request.groups["1"].resources) == {"VGPU": 1}
    assert request.groups["1"].traits.required == {"CUSTOM_A100"}
    assert dict(request.groups["_NIC"].resources) == {"SRIOV_NET_VF": 2}
    assert "(group 1) VGPU=1 with CUSTOM_A100" in describe(request)


@pytest.mark.parametrize("extra", [{"resources:VCPU": "two"}, {"resources:VCPU": "-1"}, {"group_policy": "spread"}])
def test_invalid_extra_specs(extra: dict[str, str]) -> None:
    with pytest.raises(Invalid):
        candidate_request(spec(extra))
