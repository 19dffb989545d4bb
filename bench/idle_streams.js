#!/usr/bin/env node
// Opens idle SSE streams through the gateway and holds them, in stages, so that
// bench/run can read the gateway's RSS at each stage.
//
//   node idle_streams.js URL N1 [N2 ...]
//
// URL is http:// or https:// (TLS: the self-signed certificate is accepted).
// Streams alternate GET (Accept: text/event-stream) and POST (a JSON-RPC
// tools/call with Accept: application/json, text/event-stream). A stream
// counts as established only when its response head has arrived with status
// 200 and Content-Type text/event-stream. After N1 are established it prints
// "ready N1 failed F" and waits for a line "next" on stdin before opening up to
// N2, and so on; after the last stage it waits for "quit" (or end of stdin),
// then closes every stream and exits. Everything is bounded: a stage that does
// not complete within STAGE_TIMEOUT_MS (default 120 s) prints "timeout" and the
// process exits with status 1; the whole process exits after 15 minutes.
'use strict';
const http = require('http');
const https = require('https');
const readline = require('readline');

const url = new URL(process.argv[2]);
const stages = process.argv.slice(3).map(Number);
const tls = url.protocol === 'https:';
const lib = tls ? https : http;
const CONCURRENCY = 128;
const STAGE_TIMEOUT_MS = Number(process.env.STAGE_TIMEOUT_MS || 120000);
const body = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'tools/call',
  params: { name: 'slow_count', arguments: {}, _meta: { progressToken: 1 } },
});

const open = [];   // requests whose stream is established
let started = 0, established = 0, failed = 0, inflight = 0;
let target = 0, stageDone = null;

setTimeout(() => { console.log('lifetime exceeded'); process.exit(1); }, 15 * 60 * 1000).unref();

function one(i) {
  const post = i % 2 === 1;
  const opts = {
    host: url.hostname, port: url.port, path: url.pathname + url.search,
    method: post ? 'POST' : 'GET', agent: false,
    headers: post
      ? { 'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream',
          'Content-Length': Buffer.byteLength(body) }
      : { 'Accept': 'text/event-stream' },
  };
  if (tls) { opts.rejectUnauthorized = false; opts.servername = undefined; }
  inflight++;
  let settled = false;
  const settle = (ok) => {
    if (settled) return;
    settled = true;
    inflight--;
    if (ok) established++; else failed++;
    pump();
  };
  const req = lib.request(opts, (res) => {
    const ct = String(res.headers['content-type'] || '');
    if (res.statusCode === 200 && ct.startsWith('text/event-stream')) {
      open.push(req);
      res.on('data', () => {});
      res.on('error', () => {});
      settle(true);
    } else {
      res.resume();
      settle(false);
      req.destroy();
    }
  });
  req.on('error', () => settle(false));
  if (post) req.end(body); else req.end();
}

function pump() {
  while (inflight < CONCURRENCY && started < target) one(started++);
  if (stageDone && established + failed >= target) {
    const f = stageDone;
    stageDone = null;
    f();
  }
}

function stage(n) {
  return new Promise((resolve, reject) => {
    target = n;
    const t = setTimeout(() => reject(new Error('timeout')), STAGE_TIMEOUT_MS);
    stageDone = () => { clearTimeout(t); resolve(); };
    pump();
  });
}

const rl = readline.createInterface({ input: process.stdin });
const lines = [];
let waiter = null;
rl.on('line', (l) => { if (waiter) { const w = waiter; waiter = null; w(l.trim()); } else lines.push(l.trim()); });
rl.on('close', () => { if (waiter) { const w = waiter; waiter = null; w('quit'); } else lines.push('quit'); });
function nextLine() {
  return new Promise((resolve) => { if (lines.length) resolve(lines.shift()); else waiter = resolve; });
}

(async () => {
  try {
    for (let s = 0; s < stages.length; s++) {
      await stage(stages[s]);
      console.log(`ready ${established} failed ${failed}`);
      const l = await nextLine();
      if (l === 'quit') break;
    }
  } catch (e) {
    console.log(`timeout established ${established} failed ${failed} inflight ${inflight}`);
    for (const r of open) r.destroy();
    process.exit(1);
  }
  for (const r of open) r.destroy();
  console.log('closed');
  setTimeout(() => process.exit(0), 200);
})();
