// The agent walk, a reload mid-call, the supervisor's live view and the gadget
// in a stand-in Finesse container, in headless Chromium against the demo.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemo, postJSON } from '../lib/demo.mjs';
import { launch, shot } from '../lib/browser.mjs';

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/screenshots');
let demo, browser, container, containerOrigin;
before(async () => {
  // A page on another origin that plays the Finesse container (see the gadget test).
  container = http.createServer(async (req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(await containerPage()); });
  await new Promise(r => container.listen(0, '127.0.0.1', r));
  containerOrigin = `http://localhost:${container.address().port}`;
  demo = await startDemo(['--allow-origin', containerOrigin]);
  browser = await launch();
});
after(async () => { await browser?.close(); await demo?.stop(); container?.close(); });

// containerPage defines the gadget APIs and finesse.gadget.Config the way the
// Finesse desktop does, then inlines the gadget XML's HTML content.
async function containerPage() {
  const xml = await (await fetch(demo.base + '/gadget/relay.xml')).text();
  const content = xml.match(/<!\[CDATA\[([\s\S]*?)\]\]>/)[1].replace(/<script src="__UP_[^"]*"><\/script>/g, '');
  return `<!doctype html><meta charset="utf-8"><title>Finesse (stand-in)</title>
<script>
  window.heights = 0;
  window.gadgets = { HubSettings: {}, window: { adjustHeight() { window.heights++; }, setTitle(t) { document.title = t; } }, loadingindicator: { dismiss() {} } };
  window.finesse = { gadget: { Config: { id: '1003', authorization: btoa('1003:demo') } } };
  // Like Shindig: the hub connects after the page has loaded (module scripts have run by then).
  addEventListener('load', () => gadgets.HubSettings.onConnect && gadgets.HubSettings.onConnect());
</script>${content}`;
}

// Screenshots always go to $ARTIFACTS; UPDATE_SCREENSHOTS=1 also refreshes the README's copies.
const keep = (file, name) => {
  if (!process.env.UPDATE_SCREENSHOTS) return;
  mkdirSync(docs, { recursive: true });
  copyFileSync(file, path.join(docs, name));
};

async function ssoSignIn(page, user, returnPath = '/') {
  await page.goto(demo.base + returnPath);
  if (returnPath === '/') await page.click('#sso-button');
  await page.waitForURL(/\/ids\/v1\/oauth\/authorize/);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'demo');
  await Promise.all([page.waitForURL(u => u.toString().startsWith(demo.base)), page.click('button[type=submit]')]);
}

const agentState = (page) => page.locator('#agent-state').getAttribute('data-agent-state');

test('agent walk: SSO sign-in, READY, inbound call, answer, hold, retrieve, drop, wrap-up; reload mid-call', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await ssoSignIn(page, 'agent1001');
  await page.waitForSelector('#app:not(.hidden)');
  await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'up');
  if (await agentState(page) === 'LOGOUT') {
    await page.fill('#extension', '51001');
    await page.click('#btn-login');
    await page.waitForFunction(() => document.querySelector('#agent-state').dataset.agentState === 'NOT_READY');
  }
  await page.click('#btn-ready');
  await page.waitForFunction(() => document.querySelector('#agent-state').dataset.agentState === 'READY');

  const call = await postJSON(demo.control + '/sim/calls', { queue: '5001', from: '5551234567' });
  assert.equal(call.status < 300, true, call.text);
  const answer = page.locator('[data-action=ANSWER]');
  await answer.waitFor({ timeout: 10000 });
  await answer.click();
  await page.locator('[data-action=HOLD]').waitFor();
  await page.click('[data-action=HOLD]');
  await page.locator('[data-action=RETRIEVE]').waitFor();

  // Reload in the middle of the call: the call is still there, on hold.
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'up');
  await page.locator('[data-action=RETRIEVE]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('.dialog').count(), 1);
  await page.click('[data-action=RETRIEVE]');
  await page.locator('[data-action=DROP]').waitFor();
  keep(await shot(page, 'agent-tab.png'), 'agent-tab.png');
  await page.click('[data-action=DROP]');
  await page.waitForFunction(() => ['WORK', 'WORK_READY', 'NOT_READY', 'READY'].includes(document.querySelector('#agent-state').dataset.agentState));
  const wrap = page.locator('select[aria-label="Wrap-up reason"]');
  if (await wrap.count()) await wrap.selectOption({ index: 1 });
  await page.waitForFunction(() => !document.querySelector('[data-action=DROP]'), null, { timeout: 10000 });
  const log = await page.locator('#log').innerText();
  assert.match(log, /DROPPED/, 'the event log shows the end of the call');
  await ctx.close();
});

test('the supervisor sees an agent state change within a second', async () => {
  const agentCtx = await browser.newContext();
  const supCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agent = await agentCtx.newPage();
  const sup = await supCtx.newPage();
  await ssoSignIn(agent, 'agent1002');
  await agent.waitForFunction(() => document.querySelector('#conn').dataset.state === 'up');
  if (await agentState(agent) === 'LOGOUT') {
    await agent.fill('#extension', '51002');
    await agent.click('#btn-login');
    await agent.waitForFunction(() => document.querySelector('#agent-state').dataset.agentState === 'NOT_READY');
  }
  await ssoSignIn(sup, 'super2001', '/supervisor');
  await sup.waitForURL(/\/supervisor$/);
  await sup.waitForSelector('tr[data-agent="1002"]');
  await agent.click('#btn-ready');
  const t0 = Date.now();
  await sup.waitForFunction(() => document.querySelector('tr[data-agent="1002"] [data-agent-state]').dataset.agentState === 'READY', null, { timeout: 1000 });
  assert.ok(Date.now() - t0 <= 1000);
  keep(await shot(sup, 'supervisor.png'), 'supervisor.png');
  await agentCtx.close(); await supCtx.close();
});

test('the gadget inside a stand-in Finesse container signs in with the desktop credentials and shows the agent', async () => {
  const xml = await (await fetch(demo.base + '/gadget/relay.xml')).text();
  assert.match(xml, /<Require feature="pubsub-2"\/>/);
  assert.match(xml, /<Require feature="dynamic-height"\/>/);
  assert.ok(xml.includes(demo.base + '/static/gadget.js'), 'the gadget loads its script from the relay');
  const ctx = await browser.newContext({ viewport: { width: 420, height: 260 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  await page.goto(containerOrigin + '/');
  await page.waitForFunction(() => window.relay && window.relay.connection === 'up', null, { timeout: 10000 })
    .catch(e => { throw new Error(`${e.message}; page errors: ${errors.join(' | ')}`); });
  await page.waitForFunction(() => document.querySelector('#relay-gadget .state-pill').dataset.agentState !== undefined
    && document.querySelector('#relay-gadget .state-pill').textContent !== '—', null, { timeout: 10000 });
  assert.ok(await page.evaluate(() => window.heights) > 0, 'the gadget adjusts its height');
  keep(await shot(page, 'gadget.png'), 'gadget.png');
  assert.deepEqual(errors, []);
  await ctx.close();
});
