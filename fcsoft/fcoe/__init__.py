"""The FCoE Forwarder: FIP and FCoE on Ethernet segments, bridged onto the fabric
(sans-IO; the trio shell is fcsoft.server.fcoe_server)."""

from .forwarder import Enode, FabricSide, FcfSettings, Forwarder, VnPort

__all__ = ["Enode", "FabricSide", "FcfSettings", "Forwarder", "VnPort"]
