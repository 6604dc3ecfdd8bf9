#!/usr/bin/env node
'use strict';
// A complete agency system for edxml-hub, in Node.js (docs/INTEGRATING.md is the contract).
//
//   node agency.js send --to 000.00.02.H27 --number 12 --notation STC-NS \
//        --subject "V/v ..." [--date 2026/11/20] [--attach van-ban.pdf]
//   node agency.js receive [--count N] [--idle-ms MS] [--answer 03] [--retries 2] [--retry-delay-ms 500]
//   node agency.js statuses [--count N] [--idle-ms MS] [--retries 2] [--retry-delay-ms 500]
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
//   SIGNATURE_SLOT  "standard" (default: edXML:DigitalSignature, QCVN 102) or "header-end" (see lib/edxml.js)
//
// Receiving is at-least-once and idempotent: a delivery is acknowledged only after the document
// is stored (file fsynced) and answered; a delivery whose message id is already in the seen-set
// (a copy the hub republished after a crash, or a redelivery after a lost ack) is acknowledged
// and dropped. A handler that throws is retried in place `--retries` times with a growing pause
// (`--retry-delay-ms`, doubled each time); if it still throws, the message goes back to its
// queue (nack + requeue, after cancelling the consumer so it is not taken again at once) and the
// program stops with exit code 1 and one line, as the Python client raises HandlerFailed: a
// persistent failure cannot spin, and the document waits in the queue until the system is fixed.

const amqp = require('amqplib');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const edxml = require('./lib/edxml');
const { SeenSet } = require('./lib/seen');
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
  slot: process.env.SIGNATURE_SLOT || 'standard',
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

const oneLine = (text) => String(text).trim().split(/\s*\n\s*/).join(' | ');

// What hub.client's HandlerFailed says: the handler threw `attempts` times for one message, which
// is back in its queue. The handler's last error ends the (single) line.
class HandlerFailed extends Error {
  constructor(messageId, queue, attempts, cause) {
    super(`handler failed ${attempts} time(s) for message ${messageId} from ${queue}; `
      + `the message was returned to the queue: ${oneLine(cause && cause.message)}`);
    this.name = 'HandlerFailed';
  }
}

// Consume one of this agency's queues until `count` deliveries were taken or nothing came for
// `idleMs`; `handle(msg)` runs before the ack. A throw is retried in place `retries` times, then
// the message goes back to the queue and this rejects with HandlerFailed (see the header).
async function consume(cfg, queue, { count, idleMs, retries, retryDelayMs }, handle) {
  fs.mkdirSync(cfg.store, { recursive: true });
  const seen = new SeenSet(path.join(cfg.store, `seen-${path.basename(queue)}.txt`));
  const conn = await amqp.connect(cfg.url);
  try {
    const ch = await conn.createChannel();
    await ch.prefetch(1);
    const stats = { taken: 0, handled: 0, duplicates: 0, failed: 0 };
    await new Promise((resolve, reject) => {
      let idle;
      let done = false;
      const finish = (error) => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        if (error) reject(error); else resolve();
      };
      const rearm = () => { clearTimeout(idle); idle = setTimeout(() => finish(), idleMs); };
      rearm();
      let chain = Promise.resolve();
      ch.consume(queue, (msg) => {
        if (msg === null) { finish(); return; } // the queue was deleted
        clearTimeout(idle);
        chain = chain.then(async () => {
          if (done) return; // stopping: left unacked, closing the channel gives it back
          stats.taken += 1;
          const id = msg.properties.messageId;
          if (id && seen.has(id)) {
            stats.duplicates += 1;
            ch.ack(msg);
          } else {
            for (let attempt = 1; ; attempt += 1) {
              try {
                await handle(msg);
                break;
              } catch (error) {
                stats.failed += 1;
                if (attempt > retries) {
                  // Stop taking messages first: with prefetch 1 the broker would hand the
                  // requeued message straight back to this consumer.
                  await ch.cancel(msg.fields.consumerTag);
                  ch.nack(msg, false, true);
                  throw new HandlerFailed(id, queue, attempt, error);
                }
                const pause = retryDelayMs * 2 ** (attempt - 1);
                console.error(`handler failed for ${id} (attempt ${attempt} of ${retries + 1}): `
                  + `${oneLine(error.message)}; retrying in ${pause} ms`);
                await new Promise((r) => setTimeout(r, pause)); // no hot retry loop
              }
            }
            if (id) seen.add(id); // before the ack: a crash in between means a dropped copy
            ch.ack(msg);
            stats.handled += 1;
          }
          if (count && stats.taken >= count) finish(); else rearm();
        }).catch(finish);
      }, { noAck: false }).catch(finish);
    });
    await ch.close();
    return stats;
  } finally {
    await conn.close().catch(() => {}); // already closed if the broker went away
  }
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
  const number = (name, fallback) => {
    const value = Number(opts[name] ?? fallback);
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`--${name} must be a whole number, not ${opts[name]}`);
    }
    return value;
  };
  return {
    count: number('count', 0),
    idleMs: number('idle-ms', 5000) || 5000, // 0 meant the default before these checks
    retries: number('retries', 2), // as hub.client: retries=2, retry_delay=0.5 s
    retryDelayMs: number('retry-delay-ms', 500),
  };
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
  console.error(`agency: ${oneLine(error.message)}`);
  process.exit(1);
});
