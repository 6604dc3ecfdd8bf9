"""Certificate names edited for the PDF signer-matching tests (pyHanko's name comparison)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asn1crypto import x509 as asn1_x509


def renamed(name: Any, change: Callable[[str], str], kind: str = "bmp_string") -> Any:
    """``name`` with each directory-string value changed by ``change`` and encoded as ``kind``
    (BMPString by default: an encoding the test certificates do not use), parsed back from its
    DER as a certificate's name would be."""
    rdns = []
    for rdn in name.chosen:
        values = []
        for ntv in rdn:
            value = ntv["value"]
            if isinstance(value, asn1_x509.DirectoryString):
                value = asn1_x509.DirectoryString(name=kind, value=change(value.native))
            values.append(asn1_x509.NameTypeAndValue({"type": ntv["type"].dotted, "value": value}))
        rdns.append(asn1_x509.RelativeDistinguishedName(values))
    return asn1_x509.Name.load(asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns)).dump())
