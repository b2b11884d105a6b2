"""attnlab: plug-and-play attention for CNNs, with the evidence that it helps.

The top level re-exports the everyday entry points; each subpackage has the rest:
``attnlab.attention`` (modules), ``attnlab.models`` (networks, attach), ``attnlab.data``,
``attnlab.train``, ``attnlab.cam`` (CAM family, attention capture), ``attnlab.metrics``, ``attnlab.viz``,
``attnlab.study``.
"""

__version__ = "0.1.0"

from .attention import create_attention, list_attention, record_attention, register_attention  # noqa: E402
from .cam import capture_attention  # noqa: E402
from .models import attach, create_model, detach, list_models, load_backbone  # noqa: E402
from .train import load_model  # noqa: E402

__all__ = [
    "__version__",
    "attach",
    "capture_attention",
    "create_attention",
    "create_model",
    "detach",
    "list_attention",
    "list_models",
    "load_backbone",
    "load_model",
    "record_attention",
    "register_attention",
]
