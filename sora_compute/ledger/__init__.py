"""One description per architecture: ordered ledgers of op records (``ops.py``) that evaluators read.

Importing the package registers every builder (``registry.py``): the DiT's blocks (``dit.py``, ``mmdit.py``) and the
VAE families (``vae/``).
"""

from sora_compute.ledger import dit, mmdit, vae  # noqa: F401  (registers the builders)
from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.ops import Op

__all__ = ["Op", "DiTShape", "dit_ledger"]
