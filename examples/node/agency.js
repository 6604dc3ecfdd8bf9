#!/usr/bin/env node
'use strict';
// A complete agency system for edxml-hub, in Node.js (docs/INTEGRATING.md is the contract).
//
//   node agency.js send --to 000.00.02.H27 --number 12 --notation STC-NS \
//        --subject "V/v ..." [--date 2026/11/20] [--attach van-ban.pdf]
//   node agency.js receive [--count N] [--idle-ms MS] [--answer 03]
//   node agency.js statuses [--count N] [--idle-ms MS]
//
// Settings come from the environment:
//   AMQP_URL        amqp://LOGIN:PASSWORD@host:5672/vhost (the agency's broker account)
//   HUB_PREFIX      exchange/queue prefix of the hub (default "edxml")
//   ORGAN_ID        this agency's organization code (e.g. 000.00.03.H27)
//   ORGAN_NAME      its name (optional)
//   KEY_PEM         the organization's private key (PEM)
//   CERT_PEM        its certificate followed by the issuing CA (PEM)
//   ROOT_PEM        the specialized root: when set, received packets are verified again
//   CA_PEM          the issuing CA (with ROOT_PEM)
//   STORE_DIR       where received documents and the seen-set live (default ./store)
//   SIGNATURE_SLOT  "header-end" (default) or "standard" (edXML:DigitalSignature; see lib/edxml.js)
//
// Receiving is at-least-once and idempotent: a delivery is acknowledged only after the document
// is stored (file fsynced) and answered; a delivery whose message id is already in the seen-set
// (a copy the hub republished after a crash, or a redelivery after a lost ack) is acknowledged
// and dropped. A handler failure gives the message back (nack + requeue) after a pause, so a
// persistent failure cannot spin.

const amqp = require('amqplib');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const edxml = require('./lib/edxml');
const xmlsec = require('./lib/xmlsec');

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

function options(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      if (key === 'attach') {
        (out.attach ||= []).push(argv[++i]);
      } else {
        out[key] = argv[++i];
      }
    } else {
      out._.push(argv[i]);
    }
  }
  return out;
}

const config = () => ({
  url: setting('AMQP_URL'),
  prefix: setting('HUB_PREFIX', 'edxml'),
  organId: setting('ORGAN_ID'),
  organName: process.env.ORGAN_NAME || '',
  keyPem: setting('KEY_PEM'),
  certPem: setting('CERT_PEM'),
  rootPem: process.env.ROOT_PEM || '',
  caPem: process.env.CA_PEM || '',
  store: process.env.STORE_DIR || path.resolve('store'),
  slot: process.env.SIGNATURE_SLOT || 'header-end',
});

// The message id the hub's own client uses for what an agency publishes: the first 18 bytes of
// the packet's SHA-256, base64url. Republishing the same bytes gives the same id.
function messageId(body) {
  return crypto.createHash('sha256').update(body).digest().subarray(0, 18).toString('base64url');
}

function login(url) {
  return decodeURIComponent(new URL(url).username || 'guest');
}

// Publish to the hub's inbound exchange: persistent, with user_id (RabbitMQ checks it is the
// login; the hub checks the login belongs to From), message_id, and a publisher confirm.
async function publish(cfg, body, routingKey) {
  const conn = await amqp.connect(cfg.url);
  try {
    const ch = await conn.createConfirmChannel();
    const id = messageId(body);
    ch.publish(`${cfg.prefix}.inbound`, routingKey, body, {
      persistent: true, // delivery_mode 2
      contentType: 'application/xml',
      messageId: id,
      userId: login(cfg.url),
      mandatory: true,
    });
    await ch.waitForConfirms();
    await ch.close();
    return id;
  } finally {
    await conn.close();
  }
}

async function send(cfg, opts) {
  const now = new Date();
  const attachments = (opts.attach || []).map((file, n) => {
    const data = fs.readFileSync(file);
    return {
      name: path.basename(file),
      contentType: file.endsWith('.pdf') ? 'application/pdf' : 'application/octet-stream',
      description: n === 0 ? 'Văn bản chính' : 'Phụ lục',
      data,
      contentId: crypto.randomUUID(),
    };
  });
  const dateText = opts.date || new Date(now.getTime() + 7 * 3600e3).toISOString().slice(0, 10).replace(/-/g, '/');
  const { xml, documentId } = edxml.buildDocument({
    from: { organId: cfg.organId, organName: cfg.organName },
    to: String(opts.to).split(',').map((organId) => ({ organId })),
    number: opts.number, notation: opts.notation, date: dateText, place: opts.place || '',
    subject: opts.subject, attachments,
  }, { slot: cfg.slot, at: now });
  const signed = await xmlsec.sign(xml, cfg);
  const id = await publish(cfg, signed, 'envelope');
  console.log(JSON.stringify({ sent: documentId, messageId: id, bytes: signed.length }));
}

// -- receiving -------------------------------------------------------------------------------

class SeenSet {
  constructor(file) {
    this.file = file;
    this.ids = new Set(fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  }

  has(id) { return this.ids.has(id); }

  add(id) {
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, `${id}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.ids.add(id);
  }
}

function storeDurably(file, body) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

// Consume one of this agency's queues until `count` deliveries were taken or nothing came for
// `idleMs`; `handle(msg)` runs before the ack, and a throw gives the message back.
async function consume(cfg, queue, { count, idleMs }, handle) {
  fs.mkdirSync(cfg.store, { recursive: true });
  const seen = new SeenSet(path.join(cfg.store, `seen-${path.basename(queue)}.txt`));
  const conn = await amqp.connect(cfg.url);
  const ch = await conn.createChannel();
  await ch.prefetch(1);
  const stats = { taken: 0, handled: 0, duplicates: 0, failed: 0 };
  await new Promise((resolve, reject) => {
    let idle;
    const rearm = () => { clearTimeout(idle); idle = setTimeout(resolve, idleMs); };
    rearm();
    let chain = Promise.resolve();
    ch.consume(queue, (msg) => {
      if (msg === null) { resolve(); return; } // the queue was deleted
      clearTimeout(idle);
      chain = chain.then(async () => {
        stats.taken += 1;
        const id = msg.properties.messageId;
        if (id && seen.has(id)) {
          stats.duplicates += 1;
          ch.ack(msg);
        } else {
          try {
            await handle(msg);
          } catch (error) {
            stats.failed += 1;
            console.error(`handler failed for ${id}: ${error.message}; giving it back`);
            await new Promise((r) => setTimeout(r, 1000)); // no hot requeue loop
            ch.nack(msg, false, true);
            return;
          }
          if (id) seen.add(id); // before the ack: a crash in between means a dropped copy
          ch.ack(msg);
          stats.handled += 1;
        }
        if (count && stats.taken >= count) resolve(); else rearm();
      }).catch(reject);
    }, { noAck: false }).catch(reject);
  });
  await ch.close();
  await conn.close();
  return stats;
}

async function receive(cfg, opts) {
  const answer = opts.answer || '03';
  const queue = `${cfg.prefix}.org.${cfg.organId}.inbox`;
  const stats = await consume(cfg, queue, limits(opts), async (msg) => {
    if (cfg.rootPem) await xmlsec.verify(msg.content, cfg);
    const rf = edxml.responseForDelivery(msg.properties.headers || {});
    const name = rf.documentId.replace(/[^0-9A-Za-z.-]+/g, '_');
    storeDurably(path.join(cfg.store, `${name}.edxml`), msg.content); // the exact bytes
    const status = edxml.buildStatus({
      responseFor: rf, from: { organId: cfg.organId, organName: cfg.organName },
      code: answer, description: 'Đã tiếp nhận, vào sổ văn bản đến',
    }, { slot: cfg.slot });
    const signed = await xmlsec.sign(status, cfg);
    const id = await publish(cfg, signed, 'status');
    console.log(JSON.stringify({ received: rf.documentId, messageId: msg.properties.messageId,
      answered: answer, statusMessageId: id }));
  });
  console.log(JSON.stringify({ receive: stats }));
}

async function statuses(cfg, opts) {
  const queue = `${cfg.prefix}.org.${cfg.organId}.status`;
  const stats = await consume(cfg, queue, limits(opts), async (msg) => {
    if (cfg.rootPem) await xmlsec.verify(msg.content, cfg);
    const h = msg.properties.headers || {};
    console.log(JSON.stringify({
      messageId: msg.properties.messageId,
      receipt: h['x-hub-receipt'] ? String(h['x-hub-receipt']) : null,
      status: h['x-hub-status'] ? String(h['x-hub-status']) : null,
      reporter: h['x-hub-reporter'] ? String(h['x-hub-reporter']) : null,
      reason: h['x-hub-reason'] ? String(h['x-hub-reason']) : null,
    }));
  });
  console.log(JSON.stringify({ statuses: stats }));
}

function limits(opts) {
  return { count: opts.count ? Number(opts.count) : 0, idleMs: Number(opts['idle-ms'] || 5000) };
}

async function main() {
  const opts = options(process.argv.slice(2));
  const command = opts._[0];
  const cfg = config();
  if (command === 'send') return send(cfg, opts);
  if (command === 'receive') return receive(cfg, opts);
  if (command === 'statuses') return statuses(cfg, opts);
  throw new Error('usage: agency.js send|receive|statuses [options]');
}

main().catch((error) => {
  console.error(`agency: ${error.message}`);
  process.exit(1);
});
