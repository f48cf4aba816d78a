"""Hypervisor drivers. ``driver`` is the contract every driver implements and
the only module drivers share; each driver (``fake``, later ``qemu``) is its
own module, chosen by the compute entry point, and imports no other driver."""

from loom.virt.driver import (
    CAPABILITY_METHODS,
    Capabilities,
    DriverError,
    HostResources,
    ImageSource,
    InstanceExists,
    InstanceInfo,
    InstanceInvalidState,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    NotSupported,
    PowerState,
    SpawnFailed,
    VirtDriver,
)

__all__ = [
    "CAPABILITY_METHODS",
    "Capabilities",
    "DriverError",
    "HostResources",
    "ImageSource",
    "InstanceExists",
    "InstanceInfo",
    "InstanceInvalidState",
    "InstanceNotFound",
    "InstanceSpec",
    "InsufficientResources",
    "NotSupported",
    "PowerState",
    "SpawnFailed",
    "VirtDriver",
]
