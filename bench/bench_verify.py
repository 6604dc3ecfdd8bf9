"""Cost of validating one ~10 KB signed envelope (XMLDSig verify + cached chain + CRL check).

Run: ``python bench/bench_verify.py``. Generates a throw-away test PKI in a temp directory.
Prints per-envelope costs for: the whole ``validate_packet`` without PDF signatures, with the
direct XMLDSig verifier (production) and with signxml (:func:`verify_with_signxml`, the
reference; "before"), the XMLDSig step alone both ways, the trust + revocation steps with a
warm chain cache, and ``validate_packet`` with a main PDF carrying two signatures (pyHanko).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import hub.validators as validators
from hub.directory import Directory
from hub.edxml import Attachment, build_envelope, parse_packet, sample_header, sample_trace
from hub.testing.pki import init_pki
from hub.trust.keystore import Keystore
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy, validate_packet
from hub.validators.pdf import install_hex_reader
from hub.validators.trust import check_revocation, validate_chain
from hub.validators.xmldsig import check_xml_signature, verify_with_signxml

SENDER = "000.00.01.H27"


def _per_call(fn: Callable[[], object], repeat: int = 300) -> float:
    for _ in range(10):
        fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat // 5):
            fn()
        samples.append((time.perf_counter() - start) / (repeat // 5))
    return statistics.median(samples) * 1000


def main() -> int:
    install_hex_reader()  # as hub.app.build_hub does at start-up
    now = dt.datetime.now(dt.UTC)
    at = now + dt.timedelta(minutes=1)
    directory = Directory.sample()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = init_pki(Path(tmp), directory, now=now)
        pki_s = time.perf_counter() - start
        keystore = Keystore.load(paths.keystore)
        org = keystore[SENDER]
        from cryptography import x509

        root = x509.load_pem_x509_certificate(paths.root_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(paths.issuing_ca_cert.read_bytes())
        crls = CrlSnapshot.of(
            CrlEntry(x509.load_der_x509_crl(p.read_bytes()), fetched_at=now)
            for p in (paths.root_crl_der, paths.crl_der))
        policy = TrustPolicy(roots=(root,), intermediates=(ca,), policy_oids=frozenset(
            {paths.policy_oid}), require_pdf_signatures=False)
        header = sample_header(SENDER, "000.00.02.H27")
        filler = Attachment("annex", "phu-luc.txt", "text/plain", "Phụ lục", os.urandom(2000))
        raw = sign_xml(build_envelope(header, trace=sample_trace(SENDER, at),
                                      attachments=[filler]), org)
        packet = parse_packet(raw)
        report = validate_packet(packet, at=at, policy=policy, directory=directory, crls=crls)
        assert report.accepted, report.describe()

        sig = check_xml_signature(raw, policy)
        full = _per_call(lambda: validate_packet(
            packet, at=at, policy=policy, directory=directory, crls=crls))
        xml = _per_call(lambda: check_xml_signature(raw, policy))
        xml_signxml = _per_call(lambda: verify_with_signxml(raw, policy))
        # "before": validate_packet with signxml doing the XMLDSig step
        setattr(validators, "check_xml_signature",  # noqa: B010 (bench-only swap)
                functools.partial(check_xml_signature, direct=False))
        try:
            full_signxml = _per_call(lambda: validate_packet(
                packet, at=at, policy=policy, directory=directory, crls=crls))
        finally:
            setattr(validators, "check_xml_signature", check_xml_signature)  # noqa: B010
        chain = _per_call(lambda: check_revocation(
            validate_chain(sig.leaf, sig.offered, policy, at), crls, policy, at))
        sign = _per_call(lambda: sign_xml(build_envelope(
            header, trace=sample_trace(SENDER, at), attachments=[filler]), org), 100)

        person_uid = "CCCD:042080000003"
        person = __import__("hub.trust.keystore", fromlist=["OrgSigner"]).OrgSigner.from_files(
            person_uid, paths.signers[person_uid].key, paths.signers[person_uid].cert)
        pdf = sign_pdf(sign_pdf(minimal_pdf(), person, field_name="P", reason="r"), org,
                       field_name="O", reason="r")
        main_doc = Attachment("main", "van-ban.pdf", "application/pdf", "Văn bản chính", pdf)
        pdf_raw = sign_xml(build_envelope(header, trace=sample_trace(SENDER, at),
                                          attachments=[main_doc]), org)
        pdf_packet = parse_packet(pdf_raw)
        pdf_policy = dataclasses.replace(policy, require_pdf_signatures=True)
        assert validate_packet(pdf_packet, at=at, policy=pdf_policy, directory=directory,
                               crls=crls).accepted
        with_pdf = _per_call(lambda: validate_packet(
            pdf_packet, at=at, policy=pdf_policy, directory=directory, crls=crls), 50)

    print(f"init_pki (sample directory, {len(paths.organizations)} orgs, "
          f"{len(paths.signers)} people): {pki_s:.2f} s")
    print(f"envelope size: {len(raw)} bytes")
    print(f"validate_packet, no PDF (xmldsig + trust + CRL + signer): {full:.3f} ms")
    print(f"  same, XMLDSig through signxml (before):                 {full_signxml:.3f} ms")
    print(f"  xmldsig profile + direct verify:                        {xml:.3f} ms")
    print(f"  xmldsig profile + signxml verify (before):              {xml_signxml:.3f} ms")
    print(f"  chain (cached) + CRL check:                             {chain:.3f} ms")
    print(f"sign_xml (build + sign, loaded key):                      {sign:.3f} ms")
    print(f"validate_packet with a 2-signature main PDF ({len(pdf_raw)} B):   {with_pdf:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
