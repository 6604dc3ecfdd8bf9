"""Signature enforcement: XMLDSig, certificate trust, revocation, PDF signatures."""
