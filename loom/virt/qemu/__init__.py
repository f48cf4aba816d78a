"""Real guests under QEMU, driven over QMP; see driver.py."""

from loom.virt.qemu.driver import QemuDriver, QemuOptions

__all__ = ["QemuDriver", "QemuOptions"]
