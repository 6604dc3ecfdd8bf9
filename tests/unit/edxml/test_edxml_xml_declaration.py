"""The XML declaration is read whole, however long: only UTF-8 (declared or implied) passes.

XML 1.0 §2.8 allows any run of whitespace between the declaration's pseudo-attributes. The hub
forces UTF-8 on its parser and routes the exact bytes, while every conformant processor
(xmlsec1, Java, .NET, lxml without a forced encoding) decodes them in the declared encoding: a
declaration the hub did not read whole would let it accept, verify and route a document that
its recipients read as other text with a signature that fails.
"""

from __future__ import annotations

import pytest
from lxml import etree

from hub.edxml import EnvelopeRefused, Limits, build_envelope, parse_packet, parse_xml, sample_header
from hub.reasons import Reason
from hub.trust.signing import sign_xml
from hub.validators import TrustPolicy
from hub.validators.outcome import ValidationFailure
from hub.validators.xmldsig import check_xml_signature
from tests.pki_fixtures import GeneratedPki, session_pki

SENDER = "000.00.01.H27"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def signed(pki: GeneratedPki) -> bytes:
    """A document signed by the sender, as the hub accepts it (UTF-8, Vietnamese text)."""
    return sign_xml(build_envelope(sample_header(SENDER, "000.00.02.H27")), pki.org(SENDER))


def _policy(pki: GeneratedPki) -> TrustPolicy:
    return TrustPolicy(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                       public_roots=(pki.public_root,), policy_oids=frozenset({pki.paths.policy_oid}))


def _body(document: bytes) -> bytes:
    declaration, rest = document.split(b"\n", 1)
    assert declaration.startswith(b"<?xml ")
    return rest


def _refused(data: bytes) -> EnvelopeRefused:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data)
    return caught.value


@pytest.mark.parametrize(("padding", "encoding"), [
    (b" " * 600, b"ISO-8859-1"),
    (b"\n" * 600, b"windows-1258"),
    (b"\t \r\n" * 300, b"latin1"),
    (b" " * 5_000_000, b"windows-1258"),
], ids=["600-spaces-latin-1", "600-newlines-windows-1258", "mixed-whitespace", "5-mb-of-spaces"])
def test_an_encoding_declared_far_into_a_long_declaration_is_still_refused(
        signed: bytes, pki: GeneratedPki, padding: bytes, encoding: bytes) -> None:
    # Given the signed document under a declaration of another encoding, pushed past any byte
    # window by legal XMLDecl whitespace (the declaration is not signed: anyone can add it)
    data = b"<?xml version='1.0'" + padding + b"encoding='" + encoding + b"'?>\n" + _body(signed)
    # Then a conformant processor reads other text than the hub would have
    standard = etree.fromstring(data, etree.XMLParser(resolve_entities=False, huge_tree=True))
    assert str(standard.getroottree().docinfo.encoding).lower() == encoding.decode().lower()
    # When the hub reads it, Then it is refused on its encoding, by the parser and by the
    # signature check that reads raw bytes
    refused = _refused(data)
    assert refused.reason is Reason.ENVELOPE_ENCODING_INVALID
    assert encoding.decode() in refused.detail
    with pytest.raises(ValidationFailure) as caught:
        check_xml_signature(data, _policy(pki))
    assert caught.value.reason is Reason.ENVELOPE_ENCODING_INVALID


@pytest.mark.parametrize("declaration", [
    b"",
    b'<?xml version="1.0" encoding="UTF-8"?>\n',
    b"\xef\xbb\xbf",
    b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n',
    b"<?xml version='1.0' encoding='utf-8'?>",
    b'<?xml version="1.0"?>',
    b'<?xml version="1.1" encoding="Utf-8"?>\n',
    b'<?xml version="1.0" encoding="UTF8"?>\n',
    b'<?xml version="1.0" standalone="yes"?>\n',
    b"<?xml version='1.0' encoding=\"UTF-8\" standalone='no' ?>\n",
    b'<?xml version = "1.0" encoding = "UTF-8" standalone = "no" ?>\n',
    b'<?xml\tversion="1.0"\r\nencoding="UTF-8"\n?>\r\n',
    b"<?xml version='1.0'" + b" " * 600 + b"encoding='UTF-8'?>\n",
], ids=["none", "standard", "bom", "bom-and-declaration", "single-quotes", "version-only",
        "xml-1.1", "utf8-alias", "standalone", "mixed-quotes", "spaces-around-equals",
        "tab-and-newlines", "long-utf-8"])
def test_the_standard_forms_of_a_utf8_declaration_are_accepted_and_verify(
        signed: bytes, pki: GeneratedPki, declaration: bytes) -> None:
    data = declaration + _body(signed)
    assert parse_packet(data).raw == data
    check_xml_signature(data, _policy(pki))


@pytest.mark.parametrize("declaration", [
    b'<?xml encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding=UTF-8?>',
    b'<?xml version="1.0" encoding="UTF-8\'?>',
    b'<?xml version="1.0" standalone="yes" encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding="UTF-8" encoding="latin1"?>',
    b'<?xml version="1.0"encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding=""?>',
    b'<?xml version="1.0" encoding="UTF-8" standalone="maybe"?>',
    b'<?xml version="2.0"?>',
    b'<?xml version="1.0" foo="bar"?>',
    b'<?xml version="1.0" encoding="UTF-8">',
    b'<?xml version="1.0" encoding="UTF-8"\x0b?>',
], ids=["no-version", "unquoted", "mismatched-quotes", "standalone-before-encoding",
        "two-encodings", "no-blank", "empty-encoding", "bad-standalone", "version-2",
        "unknown-pseudo-attribute", "unterminated", "vertical-tab-is-no-xml-whitespace"])
def test_a_declaration_that_is_not_a_well_formed_xmldecl_is_refused(declaration: bytes) -> None:
    data = declaration + b"\n" + _body(build_envelope(sample_header(SENDER, "000.00.02.H27")))
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits())
    assert caught.value.reason in {Reason.ENVELOPE_MALFORMED, Reason.ENVELOPE_ENCODING_INVALID}


@pytest.mark.parametrize("declaration", [
    b'  <?xml version="1.0" encoding="latin1"?>',
    b'\xef\xbb\xbf\n<?xml version="1.0" encoding="latin1"?>',
    b'<?xml version="1.0"?><?xml version="1.0" encoding="latin1"?>',
], ids=["after-whitespace", "after-bom-and-newline", "second-declaration"])
def test_a_declaration_anywhere_but_at_the_start_is_refused(declaration: bytes) -> None:
    data = declaration + b"\n" + _body(build_envelope(sample_header(SENDER, "000.00.02.H27")))
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits())
    assert caught.value.reason in {Reason.ENVELOPE_MALFORMED, Reason.ENVELOPE_ENCODING_INVALID}


def test_a_malformed_declaration_is_named_as_such() -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(b'<?xml version="1.0" encoding="UTF-8" encoding="latin1"?><a/>', Limits())
    assert caught.value.reason is Reason.ENVELOPE_MALFORMED
    assert "XML declaration" in caught.value.detail
