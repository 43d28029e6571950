"""What a node tells the conductor about its machine: psutil, and GPUs through NVML.

NVML (the ``pynvml`` module of nvidia-ml-py3) is optional: without the library, the
driver or a GPU, the node simply reports no GPUs. Nothing here raises.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

from symphony.proto import protocol_pb2 as pb

log = logging.getLogger("symphony.node.metrics")

MAX_MOUNTS = 8
SKIP_FS = {"tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2", "nsfs"}


class Gpus:
    """NVML when it works, nothing when it does not."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.nvml = pynvml
        except Exception as exc:  # no library, no driver, no GPU: all the same to us
            log.debug("no NVML GPUs: %s", exc)

    def static(self) -> list[pb.GpuStatic]:
        out = []
        for i, h in enumerate(self.handles):
            try:
                name = self.nvml.nvmlDeviceGetName(h)
                mem = self.nvml.nvmlDeviceGetMemoryInfo(h)
                out.append(pb.GpuStatic(index=i, name=name.decode() if isinstance(name, bytes) else str(name),
                                        mem_total_bytes=int(mem.total)))
            except Exception as exc:
                log.debug("GPU %d static info: %s", i, exc)
        return out

    def usage(self) -> list[pb.GpuUsage]:
        out = []
        nv = self.nvml
        for i, h in enumerate(self.handles):
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                g = pb.GpuUsage(index=i, util_percent=float(util.gpu), mem_util_percent=float(util.memory),
                                mem_used_bytes=int(mem.used), mem_free_bytes=int(mem.free))
            except Exception as exc:
                log.debug("GPU %d usage: %s", i, exc)
                continue
            try:
                g.temperature_c = int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
                g.has_temperature = True
            except Exception:
                pass
            try:
                g.power_w = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
                g.has_power = True
            except Exception:
                pass
            out.append(g)
        return out


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    fstype: str = ""


def _mounts() -> list[Mount]:
    try:
        parts = [p for p in psutil.disk_partitions(all=False) if p.fstype not in SKIP_FS]
    except Exception:
        parts = []
    out = list(dict.fromkeys(Mount(p.mountpoint, p.fstype) for p in parts))
    return out[:MAX_MOUNTS] or [Mount("/")]


class Metrics:
    def __init__(self) -> None:
        self.gpus = Gpus()
        self.mounts = _mounts()
        psutil.cpu_percent(interval=None)  # prime the counters

    def static(self) -> dict[str, Any]:
        mounts = []
        for m in self.mounts:
            try:
                mounts.append(pb.StorageMountStatic(mount_point=m.mountpoint, fs_type=m.fstype,
                                                    total_bytes=psutil.disk_usage(m.mountpoint).total))
            except OSError:
                continue
        cores = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        return {
            "cpu": pb.CpuStatic(logical_cores=cores, physical_cores=psutil.cpu_count(logical=False) or cores,
                                max_millicores_total=cores * 1000),
            "memory": pb.MemoryStatic(total_bytes=psutil.virtual_memory().total),
            "storage_mounts": mounts,
            "gpus": self.gpus.static(),
        }

    def heartbeat(self, node_id: str, used: dict[str, float]) -> pb.Heartbeat:
        vm = psutil.virtual_memory()
        try:
            load1 = os.getloadavg()[0]
        except OSError:
            load1 = 0.0
        hb = pb.Heartbeat(
            node_id=node_id,
            timestamp_unix_ms=int(time.time() * 1000),
            total_capacities_used=used,
            cpu=pb.CpuUsage(total_percent=psutil.cpu_percent(interval=None),
                            per_core_percent=psutil.cpu_percent(interval=None, percpu=True), load_1m=load1),
            memory=pb.MemoryUsage(used_bytes=vm.used, available_bytes=vm.available, used_percent=vm.percent),
            gpus=self.gpus.usage(),
        )
        for m in self.mounts:
            try:
                du = psutil.disk_usage(m.mountpoint)
            except OSError:
                continue
            hb.storage_mounts.append(pb.StorageMountUsage(mount_point=m.mountpoint, used_bytes=du.used,
                                                          available_bytes=du.free, used_percent=du.percent))
        return hb
