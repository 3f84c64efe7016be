"""tuibench: compare LLM inference libraries coarse-to-fine."""

__version__ = "0.1.0"
