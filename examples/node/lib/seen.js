'use strict';
// The receiver's seen-set: the message ids it already handled (docs/INTEGRATING.md §2), one id a
// line in a file, appended and fsynced before the ack — as hub.client's SeenMessages.
//
// Several receivers may share the file (a rolling restart runs the new one beside the old one):
// every membership test first reads what was appended since the last look (from a remembered
// offset; a stat and usually no read), so an id the other receiver recorded before dying without
// its ack is found when RabbitMQ redelivers the message here. A line is a record only with its
// newline: a crash in the middle of an append leaves a torn last line, which is ignored (that
// message was not acknowledged: it comes back and is handled) and cut off before the next append.
// Bounded: past twice `keep` lines the file is rewritten with the latest `keep` (a temporary
// file, fsynced, renamed over the old one; a receiver that had read the old file notices the new
// inode and reads the new one from its start).

const fs = require('node:fs');
const path = require('node:path');

class SeenSet {
  constructor(file, { keep = 100000 } = {}) {
    this.file = file;
    this.keep = Math.max(1, keep);
    this.ids = new Set(); // insertion-ordered: the oldest come first
    this.offset = 0; // the end of the last complete line read
    this.lines = 0; // complete lines up to `offset`
    this.inode = null;
    this.refresh();
  }

  has(id) {
    if (this.ids.has(id)) return true;
    this.refresh();
    return this.ids.has(id);
  }

  add(id) {
    this.refresh();
    if (this.ids.has(id)) return;
    const fd = fs.openSync(this.file, 'a');
    try {
      if (fs.fstatSync(fd).size > this.offset) fs.ftruncateSync(fd, this.offset); // a torn line
      fs.writeSync(fd, `${id}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.refresh();
    if (this.lines > 2 * this.keep) this.compact();
  }

  // Read what was appended since the last look; a replaced file is read from its start.
  refresh() {
    let fd;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (error) {
      if (error.code === 'ENOENT') return;
      throw error;
    }
    try {
      const stat = fs.fstatSync(fd);
      if (this.inode !== stat.ino || stat.size < this.offset) {
        this.ids.clear();
        this.offset = 0;
        this.lines = 0;
        this.inode = stat.ino;
      }
      if (stat.size === this.offset) return;
      const buf = Buffer.alloc(stat.size - this.offset);
      const got = fs.readSync(fd, buf, 0, buf.length, this.offset);
      const end = buf.subarray(0, got).lastIndexOf(0x0a);
      if (end < 0) return; // only a torn line so far
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        this.lines += 1;
        if (line) {
          this.ids.delete(line);
          this.ids.add(line);
        }
      }
      this.offset += end + 1;
    } finally {
      fs.closeSync(fd);
    }
    this.trim();
  }

  trim() {
    for (const id of this.ids) {
      if (this.ids.size <= this.keep) break;
      this.ids.delete(id);
    }
  }

  compact() {
    const latest = [...this.ids].slice(-this.keep);
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, latest.map((id) => `${id}\n`).join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    const dir = fs.openSync(path.dirname(this.file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
    this.ids = new Set(latest);
    this.inode = null; // read the new file from its start next time
    this.offset = 0;
    this.lines = 0;
    this.refresh();
  }
}

module.exports = { SeenSet };
