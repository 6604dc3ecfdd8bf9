'use strict';
// EDXML (QCVN 102:2016) packets as text, with an xmlsec1 signature template in the header.
//
// The layout is what the hub's own builder writes (hub/edxml/build.py): the <edXML> root with the
// QCVN namespace as default namespace, edXML:edXMLEnvelope redeclaring the edXML prefix, the
// message header in the documented order, the manifest, and the attachments in
// AttachmentEncoded OUTSIDE the envelope. The signature covers the whole document
// (Reference URI="", enveloped-signature + exclusive c14n, RSA-SHA256, SHA-256), so the
// attachments are signed too.
//
// Where the ds:Signature goes is the SIGNATURE_SLOT:
//   "standard"   inside edXMLHeader/edXML:DigitalSignature (the slot QCVN 102 names; what stock
//                SDK samples use) — accepted once the hub's issue 15 item 1 is in place;
//   "header-end" the last child of edXMLHeader (what every hub version accepts).

const NS = 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
const DS = 'http://www.w3.org/2000/09/xmldsig#';

const SIGNATURE_TEMPLATE =
  `<ds:Signature xmlns:ds="${DS}">` +
  '<ds:SignedInfo>' +
  '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>' +
  '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>' +
  '<ds:Reference URI=""><ds:Transforms>' +
  '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>' +
  '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>' +
  '</ds:Transforms>' +
  '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>' +
  '<ds:DigestValue/></ds:Reference></ds:SignedInfo>' +
  '<ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>';

const SLOTS = {
  standard: `<edXML:DigitalSignature>${SIGNATURE_TEMPLATE}</edXML:DigitalSignature>`,
  'header-end': SIGNATURE_TEMPLATE,
};

function signatureSlot(slot) {
  const text = SLOTS[slot];
  if (text === undefined) {
    throw new Error(`SIGNATURE_SLOT must be one of ${Object.keys(SLOTS).join(', ')}, not ${slot}`);
  }
  return text;
}

function esc(value) {
  return String(value ?? '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function el(name, value) {
  const text = esc(value);
  return text === '' ? `<edXML:${name}/>` : `<edXML:${name}>${text}</edXML:${name}>`;
}

function organization(tag, org) {
  return `<edXML:${tag}>` + el('OrganId', org.organId) + el('OrganizationInCharge', '') +
    el('OrganName', org.organName || '') + el('OrganAdd', '') + el('Email', '') +
    el('Telephone', '') + el('Fax', '') + el('Website', '') + `</edXML:${tag}>`;
}

// Vietnam time (UTC+7, no daylight saving time), as QCVN 102 writes dates and timestamps.
function vietnamParts(at) {
  const t = new Date(at.getTime() + 7 * 3600 * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return {
    date: `${t.getUTCFullYear()}/${p(t.getUTCMonth() + 1)}/${p(t.getUTCDate())}`,
    time: `${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}`,
  };
}

function timestamp(at) {
  const v = vietnamParts(at);
  return `${v.date} ${v.time}`;
}

// A new document (công văn by default). `doc`: { from, to: [..], number, notation, date
// (YYYY/MM/DD), place, subject, type, typeName, attachments: [{ name, contentType,
// description, data (Buffer), contentId }] }.
function buildDocument(doc, { slot, at = new Date() }) {
  const documentId = `${doc.from.organId},${doc.date},${doc.number}/${doc.notation}`;
  const header =
    '<edXML:MessageHeader>' +
    organization('From', doc.from) +
    doc.to.map((r) => organization('To', r)).join('') +
    '<edXML:Code>' + el('CodeNumber', doc.number) + el('CodeNotation', doc.notation) +
    '</edXML:Code>' +
    '<edXML:PromulgationInfo>' + el('Place', doc.place || '') +
    el('PromulgationDate', doc.date) + '</edXML:PromulgationInfo>' +
    '<edXML:DocumentType>' + el('Type', doc.type ?? 18) +
    el('TypeName', doc.typeName ?? 'Công văn') + '</edXML:DocumentType>' +
    el('Subject', doc.subject) + el('Content', '') +
    '<edXML:ToPlaces>' + el('Place', 'Như trên') + '</edXML:ToPlaces>' +
    '<edXML:OtherInfo>' + el('Priority', 0) + el('SphereOfPromulgation', '') +
    el('TyperNotation', '') + el('PromulgationAmount', '') + el('PageAmount', '') +
    el('Appendixes', '') + '</edXML:OtherInfo>' +
    el('SteeringType', 0) + el('DocumentId', documentId) +
    '</edXML:MessageHeader>';
  const trace =
    '<edXML:TraceHeaderList version="1.0" mustUnderstand="1" ' +
    'actor="http://schemas.xmlsoap.org/soap/actor/next">' +
    '<edXML:TraceHeader>' + el('OrganId', doc.from.organId) + el('Timestamp', timestamp(at)) +
    '</edXML:TraceHeader>' +
    '<edXML:Bussiness>' + el('BussinessDocType', 0) + el('BussinessDocReason', '') +
    el('Paper', 0) + '</edXML:Bussiness>' +
    '</edXML:TraceHeaderList>';
  const attachments = doc.attachments || [];
  const manifest = attachments.map((a) =>
    `<edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:${esc(a.contentId)}"` +
    ' xlink:role="XLinkRole" xlink:type="simple">' +
    el('Description', a.description) + el('AttachmentName', a.name) +
    el('ContentType', a.contentType) + el('ContentId', `cid:${a.contentId}`) +
    '</edXML:Reference>').join('');
  const encoded = attachments.length === 0 ? '' :
    '<AttachmentEncoded>' + attachments.map((a) =>
      '<Attachment>' +
      `<ContentType>${esc(a.contentType)}</ContentType>` +
      `<ContentId>${esc(a.contentId)}</ContentId>` +
      (a.description ? `<Description>${esc(a.description)}</Description>` : '<Description/>') +
      `<ContentTransferEncoded>${a.data.toString('base64')}</ContentTransferEncoded>` +
      `<AttachmentName>${esc(a.name)}</AttachmentName>` +
      '</Attachment>').join('') + '</AttachmentEncoded>';
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<edXML xmlns="${NS}"><edXML:edXMLEnvelope xmlns:edXML="${NS}">` +
    '<edXML:edXMLHeader>' + header + trace + signatureSlot(slot) + '</edXML:edXMLHeader>' +
    '<edXML:edXMLBody><edXML:edXMLManifest version="1.0">' + manifest +
    '</edXML:edXMLManifest></edXML:edXMLBody>' +
    '</edXML:edXMLEnvelope>' + encoded + '</edXML>\n';
  return { xml: Buffer.from(xml, 'utf8'), documentId };
}

// A status packet answering a document. `answer`: { responseFor: { organId, code, date,
// documentId }, from, code ('03'), description }.
function buildStatus(answer, { slot, at = new Date() }) {
  const rf = answer.responseFor;
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<edXML xmlns="${NS}"><edXML:edXMLEnvelope xmlns:edXML="${NS}">` +
    '<edXML:edXMLHeader><edXML:Status>' +
    '<edXML:ResponseFor>' + el('OrganId', rf.organId) + el('Code', rf.code) +
    el('PromulgationDate', rf.date) + el('DocumentId', rf.documentId) + '</edXML:ResponseFor>' +
    organization('From', answer.from) +
    el('StatusCode', answer.code) + el('Description', answer.description || '') +
    el('Timestamp', timestamp(at)) +
    '</edXML:Status>' + signatureSlot(slot) + '</edXML:edXMLHeader>' +
    '<edXML:edXMLBody/></edXML:edXMLEnvelope></edXML>\n';
  return Buffer.from(xml, 'utf8');
}

// What a status answering a document needs, from the hub's delivery headers: the hub sets
// x-hub-sender and x-hub-document-id ("{sender},{YYYY/MM/DD},{number}/{notation}", QCVN 102
// §1.14) on every document it delivers, from the verified packet.
function responseForDelivery(headers) {
  const documentId = String(headers['x-hub-document-id'] || '');
  const parts = documentId.split(',');
  if (parts.length < 3) {
    throw new Error(`delivery without a usable x-hub-document-id: ${documentId}`);
  }
  return {
    organId: String(headers['x-hub-sender'] || parts[0]),
    date: parts[1],
    code: parts.slice(2).join(','),
    documentId,
  };
}

module.exports = { buildDocument, buildStatus, responseForDelivery, SLOTS: Object.keys(SLOTS) };
