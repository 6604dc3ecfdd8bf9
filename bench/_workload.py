"""What the hub benchmark feeds the hub: a PKI issued now, signed envelopes, settings.

Everything is generated before any timing starts. Envelopes are signed in worker processes
(one per core): signing ~4000 envelopes takes a few seconds that must not count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hub.config import Settings, with_overrides
from hub.consumers.plan import BatchPlan
from hub.consumers.settlement import Action
from hub.directory import Directory
from hub.edxml import Attachment, build_envelope, sample_header
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import pdf_from_objects, sign_pdf, sign_xml

SENDER = "000.00.01.H27"
"""Văn phòng UBND tỉnh Hà Tĩnh (sample directory); its person signer is ``PERSON``."""
RECIPIENT = "000.00.02.H27"
PERSON = "CCCD:042080000003"


def make_pki(base: Path) -> PkiPaths:
    """A PKI issued at the real current time: the hubs run on the real clock."""
    return init_pki(base, Directory.sample(), keys=KeyCache())


def padded_pdf(size: int, seed: int = 7) -> bytes:
    """A valid one-page PDF of about ``size`` bytes: an incompressible image-like stream pads it.

    A scanned official document is mostly image data, so random bytes are the honest filler
    (nothing downstream compresses it away).
    """
    filler = random.Random(seed).randbytes(max(0, size - 1200))
    text = b"BT /F1 12 Tf 72 720 Td (edxml-hub benchmark document) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(text)).encode() + b" >>\nstream\n" + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length " + str(len(filler)).encode() + b" >>\nstream\n"
        + filler + b"\nendstream",
    ]
    return pdf_from_objects(objects)


@dataclass(frozen=True)
class Shape:
    """One kind of envelope the benchmark sends."""

    name: str
    filler_bytes: int
    """Size of the text attachment that pads a small envelope (0: none)."""
    pdf_bytes: int
    """Size of the main PDF, signed by a person and the organization (0: none)."""
    hosted_recipient: bool = False
    """The hub also holds the recipient's key and signs its "01 received" receipt (a second
    RSA signature per envelope). Off: the hub holds the operator's key only, as a hub serving
    agencies that run their own systems (they send their own 01); the path the issue names."""


SMALL = Shape("10KB", filler_bytes=1900, pdf_bytes=0)
SMALL_HOSTED = Shape("10KB, recipient hosted", filler_bytes=1900, pdf_bytes=0,
                     hosted_recipient=True)
LARGE = Shape("1MB", filler_bytes=0, pdf_bytes=740_000)


_worker: dict[str, object] = {}


def _init_worker(keystore: str, person: tuple[str, str], shape: Shape, tag: str) -> None:
    ks = Keystore.load(keystore)
    signer = ks.signer(SENDER)
    assert signer is not None
    attachments: list[Attachment] = []
    if shape.filler_bytes:
        # Text, not PDF: the 10 KB case has no main PDF to judge (PDF signatures are the 1 MB case).
        attachments.append(Attachment("annex-" + tag, "phu-luc.txt", "text/plain", "Phụ lục",
                                      random.Random(1).randbytes(shape.filler_bytes)))
    if shape.pdf_bytes:
        person_signer = OrgSigner.from_files(PERSON, Path(person[0]), Path(person[1]))
        pdf = sign_pdf(padded_pdf(shape.pdf_bytes), person_signer, field_name="NguoiKy",
                       reason="Ký ban hành")
        pdf = sign_pdf(pdf, signer, field_name="CoQuan", reason="Đóng dấu")
        attachments.insert(0, Attachment("main-" + tag, "van-ban.pdf", "application/pdf",
                                         "Văn bản chính", pdf))
    _worker.update(signer=signer, attachments=attachments, tag=tag)


def _sign_range(numbers: Sequence[int]) -> list[bytes]:
    signer = _worker["signer"]
    assert isinstance(signer, OrgSigner)
    attachments = _worker["attachments"]
    assert isinstance(attachments, list)
    today = dt.datetime.now(dt.UTC).date()
    out = []
    for i in numbers:
        header = sample_header(SENDER, RECIPIENT, number=f"{_worker['tag']}{i}",
                               promulgation_date=today)
        header = dataclasses.replace(header, content="Nội dung văn bản phục vụ đo hiệu năng.")
        out.append(sign_xml(build_envelope(header, attachments=attachments), signer))
    return out


def make_envelopes(pki: PkiPaths, shape: Shape, n: int, tag: str = "B") -> list[bytes]:
    """``n`` signed envelopes of ``shape``, each with its own DocumentId (number ``tag``+i)."""
    workers = max(1, min(os.cpu_count() or 1, 4))
    issued = pki.signers[PERSON]
    person = (str(issued.key), str(issued.cert))
    chunks = [list(range(i, n, workers)) for i in range(workers)]
    with ProcessPoolExecutor(workers, initializer=_init_worker,
                             initargs=(str(pki.keystore), person, shape, tag)) as pool:
        parts = list(pool.map(_sign_range, chunks))
    # Interleave back into number order (cosmetic: every envelope is independent).
    out: list[bytes] = []
    for j in range(max(len(c) for c in chunks)):
        out.extend(p[j] for p in parts if j < len(p))
    return out


def not_delivered(plan: BatchPlan, envelopes: int) -> list[str]:
    """Why a planned batch of ``envelopes`` valid envelopes is not the valid path (each one
    delivered): the reasons of the others, or that some delivery has no outcome; [] if it is."""
    problems = sorted({d.reason.value for _delivery, d in plan.outcomes
                       if d.action is not Action.DELIVER})
    if len(plan.outcomes) != envelopes:
        problems.append(f"{len(plan.outcomes)} outcomes for {envelopes} envelopes")
    return problems


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def operator_keystore(pki: PkiPaths, into: Path, operator: str = SENDER) -> Path:
    """A keystore directory holding the operator organization's key and chain only."""
    into.mkdir(parents=True, exist_ok=True)
    for name in (f"{operator}.key.pem", f"{operator}.pem"):
        shutil.copyfile(pki.keystore / name, into / name)
    return into


def hub_settings(pki: PkiPaths, state: Path, url: str, prefix: str, *,
                 require_pdf: bool, hosted_recipient: bool = False) -> Settings:
    keystore = pki.keystore if hosted_recipient else operator_keystore(pki, state / "keystore")
    return with_overrides(
        Settings(base_dir=str(state)),
        broker={"url": url, "prefix": prefix, "trusted_publishers": ["guest"]},
        trust={"roots": [str(pki.root_cert)], "intermediates": [str(pki.issuing_ca_cert)],
               "crls": [str(pki.crl_der), str(pki.root_crl_der)], "fetch_crls": False,
               "public_roots": [str(pki.public_root_cert)], "policy_oids": [pki.policy_oid],
               "require_pdf_signatures": require_pdf},
        hub={"keystore": str(keystore), "operator_organ_id": SENDER},
        ledger={"url": f"sqlite:///{state / 'ledger.sqlite3'}", "blob_dir": str(state / "blobs")},
    )


def consumer_env(settings: Settings, log_level: str) -> dict[str, str]:
    """The ``HUB_*`` variables that configure ``hub run`` exactly like ``settings``."""
    b, t = settings.broker, settings.trust
    env = dict(os.environ)
    env.update({
        "HUB_BROKER__URL": b.url, "HUB_BROKER__PREFIX": b.prefix,
        "HUB_BROKER__TRUSTED_PUBLISHERS": ",".join(b.trusted_publishers),
        "HUB_TRUST__ROOTS": ",".join(t.roots), "HUB_TRUST__INTERMEDIATES": ",".join(t.intermediates),
        "HUB_TRUST__CRLS": ",".join(t.crls), "HUB_TRUST__FETCH_CRLS": "false",
        "HUB_TRUST__PUBLIC_ROOTS": ",".join(t.public_roots),
        "HUB_TRUST__POLICY_OIDS": ",".join(t.policy_oids),
        "HUB_TRUST__REQUIRE_PDF_SIGNATURES": str(t.require_pdf_signatures).lower(),
        "HUB_HUB__KEYSTORE": settings.hub.keystore,
        "HUB_HUB__OPERATOR_ORGAN_ID": settings.hub.operator_organ_id,
        "HUB_LEDGER__URL": settings.ledger.url,
        "HUB_LEDGER__BLOB_DIR": settings.ledger.blob_dir, "HUB_LOG__LEVEL": log_level,
        "HUB_LOG__FORMAT": "json",
    })
    return env


def emit(result: dict[str, object], output: str | None) -> None:
    """A bench's result: one JSON object on stdout, and in ``output`` too when given."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
