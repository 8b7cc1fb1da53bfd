// Launches Debian's chromium through playwright-core (no browser download).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const artifacts = process.env.ARTIFACTS || path.join(tmpdir(), 'relay-artifacts');
mkdirSync(artifacts, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'], // playwright gives every launch a fresh profile
  });
}

export async function shot(page, name, { fullPage = true } = {}) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage });
  return file;
}
