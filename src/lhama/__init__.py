"""lhama: multimodal LLMs that speak Brazilian Portuguese."""

__version__ = "0.1.0"
