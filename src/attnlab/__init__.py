"""attnlab: plug-and-play attention for CNNs, with the evidence that it helps."""

from .attention import create_attention, list_attention, record_attention, register_attention

__version__ = "0.1.0"

__all__ = ["create_attention", "list_attention", "record_attention", "register_attention", "__version__"]
