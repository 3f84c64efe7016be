"""Peak dense FLOP/s and memory bandwidth of common accelerators, each with where the figure comes from.

Dense means without 2:4 sparsity (the datasheets' headline tensor figures are often the sparse ones,
twice these). For GeForce cards the tensor figure is the one with FP32 accumulation, which is what
PyTorch's bf16/fp16 matmuls use. Bandwidths are in decimal bytes (1 GB/s = 1e9 B/s), as vendors
quote them.
"""

import msgspec

from tuibench.core.roofline import Roofline
from tuibench.core.errors import UserError

T = 1e12
GB = 1e9


class DeviceSpec(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # what --device takes
    name: str
    peak_flops_s: dict[str, float]  # dtype -> dense FLOP/s
    bandwidth_bytes_s: float
    memory_bytes: float | None = None
    source: str = ""
    nvml_names: tuple[str, ...] = ()  # substrings of the NVML product name that identify it

    def roofline(self, dtype: str) -> Roofline:
        peak = self.peak_flops_s.get(dtype)
        if peak is None:
            have = ", ".join(sorted(self.peak_flops_s))
            raise UserError(f"{self.name} has no {dtype} figure (it has {have}): pass --dtype one of those")
        return Roofline(device=self.name, dtype=dtype, peak_flops_s=peak, bandwidth_bytes_s=self.bandwidth_bytes_s,
                        source=self.source)


def _half(bf16: float | None, fp16: float, fp32: float, tf32: float | None = None) -> dict[str, float]:
    peaks = {"float16": fp16 * T, "float32": fp32 * T}
    if bf16 is not None:
        peaks["bfloat16"] = bf16 * T
    if tf32 is not None:
        peaks["tfloat32"] = tf32 * T
    return peaks


_A100 = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100)"
_H100 = "NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100)"

GPUS: tuple[DeviceSpec, ...] = (
    DeviceSpec(key="a100-40gb", name="NVIDIA A100 SXM4 40GB", peak_flops_s=_half(312, 312, 19.5, 156),
               bandwidth_bytes_s=1555 * GB, memory_bytes=40 * GB, source=_A100,
               nvml_names=("A100-SXM4-40GB", "A100-PCIE-40GB")),
    DeviceSpec(key="a100-80gb", name="NVIDIA A100 SXM4 80GB", peak_flops_s=_half(312, 312, 19.5, 156),
               bandwidth_bytes_s=2039 * GB, memory_bytes=80 * GB, source=_A100, nvml_names=("A100-SXM4-80GB",)),
    DeviceSpec(key="a100-80gb-pcie", name="NVIDIA A100 PCIe 80GB", peak_flops_s=_half(312, 312, 19.5, 156),
               bandwidth_bytes_s=1935 * GB, memory_bytes=80 * GB, source=_A100,
               nvml_names=("A100 80GB PCIe", "A100-PCIE-80GB")),
    DeviceSpec(key="a800", name="NVIDIA A800 SXM4 80GB", peak_flops_s=_half(312, 312, 19.5, 156),
               bandwidth_bytes_s=2039 * GB, memory_bytes=80 * GB,
               source="assumed equal to A100 SXM4 80GB: an export variant with NVLink cut to 400 GB/s",
               nvml_names=("A800",)),
    DeviceSpec(key="h100", name="NVIDIA H100 SXM5 80GB", peak_flops_s=_half(989.4, 989.4, 66.9, 494.7) | {"float8": 1978.9 * T},
               bandwidth_bytes_s=3350 * GB, memory_bytes=80 * GB, source=_H100,
               nvml_names=("H100 80GB HBM3", "H100-SXM5", "H100 SXM")),
    DeviceSpec(key="h100-pcie", name="NVIDIA H100 PCIe 80GB", peak_flops_s=_half(756.5, 756.5, 51.2, 378) | {"float8": 1513 * T},
               bandwidth_bytes_s=2000 * GB, memory_bytes=80 * GB, source=_H100, nvml_names=("H100 PCIe",)),
    DeviceSpec(key="h200", name="NVIDIA H200 SXM 141GB", peak_flops_s=_half(989.4, 989.4, 66.9, 494.7) | {"float8": 1978.9 * T},
               bandwidth_bytes_s=4800 * GB, memory_bytes=141 * GB,
               source="NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)", nvml_names=("H200",)),
    DeviceSpec(key="l40s", name="NVIDIA L40S", peak_flops_s=_half(362.05, 362.05, 91.6, 183) | {"float8": 733 * T},
               bandwidth_bytes_s=864 * GB, memory_bytes=48 * GB,
               source="NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s)", nvml_names=("L40S",)),
    DeviceSpec(key="l4", name="NVIDIA L4", peak_flops_s=_half(121, 121, 30.3, 60) | {"float8": 242.5 * T},
               bandwidth_bytes_s=300 * GB, memory_bytes=24 * GB,
               source="NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4)", nvml_names=(" L4",)),
    DeviceSpec(key="a10g", name="NVIDIA A10G", peak_flops_s=_half(70, 70, 35, 35),
               bandwidth_bytes_s=600 * GB, memory_bytes=24 * GB,
               # NVIDIA publishes no A10G datasheet: tensor throughput below the A10's 125, FP32 above its 31.2.
               source="estimate: AWS-only part, no vendor datasheet (Baseten, 'NVIDIA A10 vs A10G')",
               nvml_names=("A10G",)),
    DeviceSpec(key="rtx3090", name="NVIDIA GeForce RTX 3090", peak_flops_s=_half(71, 71, 35.6),
               bandwidth_bytes_s=936 * GB, memory_bytes=24 * GB,
               source="NVIDIA Ampere GA102 GPU architecture whitepaper, table 9 (FP32-accumulate tensor)",
               nvml_names=("RTX 3090",)),
    DeviceSpec(key="rtx4090", name="NVIDIA GeForce RTX 4090", peak_flops_s=_half(165.2, 165.2, 82.6) | {"float8": 330.3 * T},
               bandwidth_bytes_s=1008 * GB, memory_bytes=24 * GB,
               source="NVIDIA Ada GPU architecture whitepaper, table 2 (FP32-accumulate tensor)",
               nvml_names=("RTX 4090",)),
    DeviceSpec(key="t4", name="NVIDIA Tesla T4", peak_flops_s=_half(None, 65, 8.1),
               bandwidth_bytes_s=320 * GB, memory_bytes=16 * GB,
               source="NVIDIA T4 Tensor Core GPU datasheet (no bfloat16)", nvml_names=("T4",)),
    DeviceSpec(key="v100", name="NVIDIA Tesla V100 SXM2", peak_flops_s=_half(None, 125, 15.7),
               bandwidth_bytes_s=900 * GB, memory_bytes=32 * GB,
               source="NVIDIA Tesla V100 datasheet (no bfloat16)", nvml_names=("V100",)),
    DeviceSpec(key="mi300x", name="AMD Instinct MI300X", peak_flops_s=_half(1307.4, 1307.4, 163.4) | {"float8": 2614.9 * T},
               bandwidth_bytes_s=5300 * GB, memory_bytes=192 * GB,
               source="AMD Instinct MI300X data sheet (amd.com)", nvml_names=()),
)

BY_KEY = {gpu.key: gpu for gpu in GPUS}
# What users type for the usual card of a name: the SXM part, the larger memory.
ALIASES = {"a100": "a100-80gb", "a100-80": "a100-80gb", "a100-40": "a100-40gb", "h100-sxm": "h100", "h200-sxm": "h200",
           "a100-sxm": "a100-80gb", "3090": "rtx3090", "4090": "rtx4090"}


def gpu_by_key(key: str) -> DeviceSpec:
    """A listed GPU by its key, or a name users type for it (`a100` is the A100 80GB SXM)."""
    key = key.lower()
    try:
        return BY_KEY[ALIASES.get(key, key)]
    except KeyError:
        raise UserError(f"--device {key}: not a known device; choose cpu, auto or one of {', '.join(BY_KEY)}") from None


def gpu_by_nvml_name(nvml_name: str) -> DeviceSpec | None:
    """The table entry for a GPU as NVML names it ("NVIDIA H100 80GB HBM3"), or None if it is not listed.

    The longest matching pattern wins, so "A100-SXM4-80GB" is never read as a 40 GB part.
    """
    best, best_len = None, 0
    for gpu in GPUS:
        for pattern in gpu.nvml_names:
            if pattern.lower() in f" {nvml_name.lower()}" and len(pattern) > best_len:
                best, best_len = gpu, len(pattern)
    return best
