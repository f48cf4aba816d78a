"""ImagePropertiesFilter: a host must support the architecture,
hypervisor type and VM mode the image asks for (``hw_architecture``,
``img_hv_type``, ``hw_vm_mode``, or their legacy names ``architecture``,
``hypervisor_type``, ``vm_mode``). An image asking for none goes anywhere.

What a host supports: its ``supported_instances`` capability ([arch,
hv_type, vm_mode] triples, as Nova's drivers report) when it has one;
otherwise its architectures from its ``HW_ARCH_*`` / ``COMPUTE_ARCH_*``
traits (x86_64 when it has none), its ``hypervisor_type`` capability (if
reported) and the ``hvm`` mode (the only one QEMU/KVM runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

DEFAULT_ARCH = "x86_64"
ARCH_TRAIT_PREFIXES = ("HW_ARCH_", "COMPUTE_ARCH_")
# Other spellings of the same thing, as Nova canonicalises them.
ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "i486": "i686", "i586": "i686",
                "x86": "i686", "x86_32": "i686", "ia32": "i686", "arm64": "aarch64", "armv7": "armv7l",
                "ppc64el": "ppc64le"}
HV_TYPE_ALIASES = {"xapi": "xen"}
VM_MODE_ALIASES = {"hv": "hvm", "baremetal": "hvm", "pv": "xen", "xen": "xen"}

Triple = tuple[str | None, str | None, str | None]


def _canonical(value: Any, aliases: Mapping[str, str]) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).lower()
    return aliases.get(text, text)


def image_properties(image: Mapping[str, Any]) -> dict[str, Any]:
    """The image's properties: the Image API shows them at the top level,
    Nova's image meta under ``properties``; both are read."""
    nested = image.get("properties")
    return {**image, **(nested if isinstance(nested, Mapping) else {})}


def requested(image: Mapping[str, Any]) -> Triple:
    props = image_properties(image)
    return (_canonical(props.get("hw_architecture") or props.get("architecture"), ARCH_ALIASES),
            _canonical(props.get("img_hv_type") or props.get("hypervisor_type"), HV_TYPE_ALIASES),
            _canonical(props.get("hw_vm_mode") or props.get("vm_mode"), VM_MODE_ALIASES))


def supported_instances(host: HostState) -> list[Triple]:
    reported = host.capabilities.get("supported_instances")
    if reported:
        return [(_canonical(a, ARCH_ALIASES), _canonical(h, HV_TYPE_ALIASES), _canonical(m, VM_MODE_ALIASES))
                for a, h, m in reported]
    arches = sorted({t.split("_ARCH_", 1)[1].lower() for t in host.traits if t.startswith(ARCH_TRAIT_PREFIXES)})
    hv_type = _canonical(host.capabilities.get("hypervisor_type"), HV_TYPE_ALIASES)
    return [(arch, hv_type, "hvm") for arch in arches or [DEFAULT_ARCH]]


class ImagePropertiesFilter(Filter):
    run_once_per_request = True
    run_on_rebuild = True

    def applies(self, spec: RequestSpec) -> bool:
        return any(requested(spec.image))

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        wanted = requested(spec.image)
        if not any(wanted):
            return True
        return any(all(w is None or w == have for w, have in zip(wanted, triple, strict=True))
                   for triple in supported_instances(host))
