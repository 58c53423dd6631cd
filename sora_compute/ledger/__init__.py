"""One description per architecture: ordered ledgers of op records (``ops.py``) that evaluators read.

Importing the package registers every builder (``registry.py``): the DiT's blocks (``dit.py``, ``mmdit.py``), the text
encoders (``text_encoder.py``, one builder per kind) and the VAE families (``vae/``).
"""

from sora_compute.ledger import dit, mmdit, text_encoder, vae  # noqa: F401  (registers the builders)
from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.ops import Op
from sora_compute.ledger.text_encoder import text_encoder_ledger

__all__ = ["Op", "DiTShape", "dit_ledger", "text_encoder_ledger"]
