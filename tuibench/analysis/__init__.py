"""Theory: per-module FLOPs, bytes and arithmetic intensity, device peaks, the roofline. Pure math."""
