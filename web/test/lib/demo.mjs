// Starts `finesse-relay demo` on a free loopback port and reads the URLs it
// prints. RELAY_BIN names a built binary; without it the test builds one.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function relayBinary() {
  if (process.env.RELAY_BIN) return process.env.RELAY_BIN;
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'relay-')), 'finesse-relay');
  execFileSync('go', ['build', '-o', out, './server'], { cwd: repo, stdio: 'inherit' });
  process.env.RELAY_BIN = out;
  return out;
}

/** Starts the demo; resolves {base, control, stop, output()}. */
export function startDemo(extra = []) {
  const bin = relayBinary();
  const child = spawn(bin, ['demo', '--listen', '127.0.0.1:0', '--fast', '--robots=false', '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error('demo did not print its URLs in 20 s:\n' + out)); }, 20000);
    const onData = (b) => {
      out += b;
      const base = out.match(/Agent desktop\s+(http:\/\/[^\s/]+)\//);
      const control = out.match(/Simulator control\s+(http:\/\/[^\s]+)/);
      if (base && control) {
        clearTimeout(timer);
        resolve({
          base: base[1], control: control[1].replace(/\/$/, ''), output: () => out,
          stop: () => new Promise(r => { child.once('exit', r); child.kill('SIGTERM'); }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited with ${code}:\n${out}`)); });
  });
}

/** POSTs JSON and returns {status, json}. */
export async function postJSON(url, body, headers = {}) {
  const rsp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await rsp.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: rsp.status, json, text };
}
