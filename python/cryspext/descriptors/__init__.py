"""Structure descriptors computed by the C++ core.

ARISE's SOAP (Leitherer et al., Nat. Commun. 12, 6234 (2021); thesis sections 4.3.1-4.3.2):
lengths scaled by the nearest-neighbour distance of each species pair, quippy's averaged SOAP
per (alpha, beta) substructure, averaged over all pairs -> 316 values for n_max=9, l_max=6.
"""

from __future__ import annotations

from .nn import nearest_neighbor_distance
from .soap import arise_soap, arise_soap_batch, arise_soap_boxes, soap_dimension, soap_per_atom

__all__ = [
    "nearest_neighbor_distance",
    "arise_soap",
    "arise_soap_batch",
    "arise_soap_boxes",
    "soap_per_atom",
    "soap_dimension",
]
