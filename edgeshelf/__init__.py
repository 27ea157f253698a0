"""edgeshelf: on-device multimodal product search.

The rooms of the design (``sdk``, ``towers``, ``converters``, ``catalogue``, ``firmware_bridge``,
``benchmarks``) are the sub-packages ``edgeshelf.sdk`` and so on. A device app needs only
``edgeshelf.sdk``; see the README's "Embedding the SDK" section.
"""

__version__ = "0.1.0"
