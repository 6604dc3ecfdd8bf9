'use strict';
// Sign and verify with the xmlsec1 command line (the C reference implementation of XML-DSig;
// Debian: apt-get install xmlsec1). Files go through a private temporary directory.

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const XMLSEC1 = process.env.XMLSEC1 || 'xmlsec1';

function run(args) {
  return new Promise((resolve, reject) => {
    execFile(XMLSEC1, args, { timeout: 30000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const why = String(stderr || error.message).trim().split('\n').slice(-3).join(' | ');
        reject(new Error(`xmlsec1 ${args[0]} failed: ${why}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

async function withTemp(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edxml-'));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Fill the packet's signature template with the key's signature; `certPem` is the certificate
// followed by its issuing CA (both go into X509Data, the hub builds the chain from them).
async function sign(template, { keyPem, certPem }) {
  return withTemp(async (dir) => {
    const input = path.join(dir, 'template.xml');
    const output = path.join(dir, 'signed.xml');
    fs.writeFileSync(input, template);
    await run(['--sign', '--privkey-pem', `${keyPem},${certPem}`, '--output', output, input]);
    return fs.readFileSync(output);
  });
}

// Verify a packet the hub delivered (it was verified by the hub already; an agency may check
// again under its own copy of the specialized root). The hub refuses DTDs, so what it delivers
// is safe to hand to xmlsec1.
async function verify(packet, { rootPem, caPem }) {
  return withTemp(async (dir) => {
    const input = path.join(dir, 'packet.xml');
    fs.writeFileSync(input, packet);
    const args = ['--verify', '--trusted-pem', rootPem];
    if (caPem) args.push('--untrusted-pem', caPem);
    args.push(input);
    await run(args);
  });
}

module.exports = { sign, verify };
