"""Bytes <-> typed values for everything fcsoft puts on the wire. No I/O, no state, no clock.

- encap: RFC 3643 encapsulation (FCIP), SOF/EOF, FC CRC, the incremental FrameDecoder
- header: the FC-FS-4 frame header, R_CTL / TYPE / F_CTL codes
- els, els_login, bls: FC-LS-4 extended and basic link services
- ct: FC-GS-8 CT_IU preamble, accept and reject; ns: the name server's payloads
- layout: the construct boundary the control-plane payloads (els, bls, ct, ns) are declared in
- fcp: FCP-4 information units
- pcap: pcap records of link type 225 for traces
"""

from .errors import DecodeError, FrameError, FramingError

__all__ = ["DecodeError", "FrameError", "FramingError"]
