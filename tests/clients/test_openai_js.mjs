// The real `openai` npm client (6.x), unchanged, against dwell's /v1 routes.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import OpenAI from 'openai';
import { run, startServer, uploadBlob, STORIES } from './server.mjs';

const srv = await startServer();
const digest = await uploadBlob(srv.base, STORIES);
const cr = await fetch(`${srv.base}/api/create`, {
  method: 'POST', body: JSON.stringify({ model: 'stories', files: { [basename(STORIES)]: digest }, stream: false }),
});
assert.equal(cr.status, 200);
const client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'ollama', maxRetries: 0 });
const messages = [{ role: 'user', content: 'Tell me a story' }];

const code = await run([
  ['chat completion', async () => {
    const r = await client.chat.completions.create({ model: 'stories', messages, max_tokens: 8, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 8);
  }],
  ['chat completion streamed', async () => {
    const full = await client.chat.completions.create({ model: 'stories', messages, max_tokens: 8, temperature: 0 });
    const stream = await client.chat.completions.create({ model: 'stories', messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = ''; let finish = null; let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, full.choices[0].message.content);
    assert.ok(finish === 'stop' || finish === 'length');
    assert.ok(usage && usage.total_tokens > 0);
  }],
  ['completion', async () => {
    const r = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
  }],
  ['models', async () => {
    const list = await client.models.list();
    const ids = [];
    for await (const m of list) ids.push(m.id);
    assert.ok(ids.includes('stories:latest'), ids.join());
    const m = await client.models.retrieve('stories:latest');
    assert.equal(m.id, 'stories:latest');
    await assert.rejects(client.models.retrieve('nope'), (e) => e.status === 404);
  }],
  ['embeddings', async () => {
    const r = await client.embeddings.create({ model: 'stories', input: ['hello', 'world'] });
    assert.equal(r.data.length, 2);
    assert.ok(r.data[0].embedding.length > 0);
    const n = Math.hypot(...r.data[0].embedding);
    assert.ok(Math.abs(n - 1) < 1e-3, String(n));
  }],
  ['errors', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages }), (e) => e.status === 404);
    await assert.rejects(client.chat.completions.create({ model: 'stories', messages: [] }), (e) => e.status === 400);
  }],
]);
srv.stop();
process.exit(code);
