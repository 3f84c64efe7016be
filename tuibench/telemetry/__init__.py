"""Device telemetry: NVML for NVIDIA GPUs, psutil where NVML is absent."""
