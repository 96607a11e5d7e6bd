// server.mjs — shared helper of the client tests: starts `$DWELL_BIN serve` on 127.0.0.1 with
// a free port (OLLAMA_HOST=127.0.0.1:0, the port read from the `listening on` log line) and a
// temporary model store, uploads GGUF blobs, and always kills the server at the end.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SHARED = process.env.DWELL_SHARED ?? '';
export const BIN = process.env.DWELL_BIN ?? '';
export const STORIES = join(SHARED, 'models', 'stories260K.gguf');

export async function startServer(env = {}, timeoutMs = 30000) {
  if (!BIN || !SHARED) throw new Error('DWELL_BIN and DWELL_SHARED must be set');
  const dir = mkdtempSync(join(tmpdir(), 'dwell-clients-'));
  const childEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.startsWith('OLLAMA_')) delete childEnv[k];
  Object.assign(childEnv, { OLLAMA_HOST: '127.0.0.1:0', OLLAMA_MODELS: join(dir, 'models') }, env);
  const proc = spawn(BIN, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), timeoutMs);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${log}`)); });
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  return { base, port, proc, stop, log: () => log };
}

// Uploads a file as a blob (HEAD first, POST when missing), as `ollama create` does.
export async function uploadBlob(base, path) {
  const data = readFileSync(path);
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
  const head = await fetch(`${base}/api/blobs/${digest}`, { method: 'HEAD' });
  if (head.status !== 200) {
    const r = await fetch(`${base}/api/blobs/${digest}`, { method: 'POST', body: data });
    if (r.status !== 201 && r.status !== 200) throw new Error(`blob upload: ${r.status}`);
  }
  return digest;
}

// A tiny runner: named async tests, "N passed, N failed", exit code.
export async function run(tests) {
  let passed = 0; const failed = [];
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      passed++;
      console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed.push(name);
      console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    }
  }
  console.log(`${passed} passed, ${failed.length} failed${failed.length ? ' ' + failed.join(', ') : ''}`);
  return failed.length ? 1 : 0;
}
