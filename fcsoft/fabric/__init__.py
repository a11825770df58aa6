"""The switch: logins and N_Port_IDs, name server, zoning, SCR/RSCN, routing (sans-IO)."""

from .core import Fabric, LinkState
from .zoning import Zoning

__all__ = ["Fabric", "LinkState", "Zoning"]
