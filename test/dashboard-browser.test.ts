// The dashboard in a real browser: Debian's Chromium driven by puppeteer-core
// (nothing downloads a browser), against the real server. It opens /, finds a
// pool, checks the plots drew pixels, uploads a CSV and watches the progress
// bar reach 100 % and the count change, sees an append made over HTTP arrive
// live (pushed over /ws), visits the server page, and asks for the token of a
// server run with --auth-token (the live channel then carries it too). Screenshots go to test-artifacts/dashboard/ (not committed).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from './helpers/server-process.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts/dashboard');

let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: mkdtempSync(path.join(os.tmpdir(), 'poolq-chromium-')),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()}`));
  page.on('request', (req) => {
    if (!req.url().startsWith('http://127.0.0.1') && !req.url().startsWith('data:')) errors.push(`request to elsewhere: ${req.url()}`);
  });
  return { page, errors };
}

/** Pixels of the element's canvases that are not transparent. */
function drawnPixels(page: Page, testId: string): Promise<number> {
  return page.$$eval(`[data-testid=${testId}] canvas`, (canvases) => {
    let drawn = 0;
    for (const canvas of canvases) {
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn++;
    }
    return drawn;
  });
}

function shownCount(page: Page): Promise<number> {
  return page.$eval('[data-testid=summary]', (el) => Number((el as HTMLElement).dataset.count ?? -1));
}

async function waitForCount(page: Page, count: number): Promise<void> {
  await page.waitForFunction(
    (n: number) => (document.querySelector('[data-testid=summary]') as HTMLElement | null)?.dataset.count === String(n),
    { timeout: 15_000 },
    count,
  );
}

describe('the dashboard', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
    for (let poolId = 1; poolId <= 3; poolId++) {
      const values = Array.from({ length: 2000 }, (_, i) => Math.round(1000 * Math.exp(Math.sin(i * poolId) * 2)) / 10);
      await fetch(server.url('/add'), { method: 'POST', body: JSON.stringify({ poolId, poolValues: values }) });
    }
  });

  afterAll(async () => {
    await server.stop();
  });

  it('lists the pools, draws a pool, imports a CSV with a progress bar and shows appends live', async () => {
    const { page, errors } = await newPage();
    await page.goto(server.url('/'), { waitUntil: 'networkidle0' });
    const links = await page.$$eval('[data-testid=pool-link]', (as) => as.map((a) => a.textContent));
    expect(links).toEqual(['1', '2', '3']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'pools.png') });

    const poolLink = (await page.$$('[data-testid=pool-link]'))[2];
    await poolLink.click();
    await page.waitForFunction(() => location.hash === '#/pools/3');
    await waitForCount(page, 2000);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=percentile-table] tbody tr').length === 4);
    expect(await drawnPixels(page, 'quantile-plot')).toBeGreaterThan(500);
    expect(await drawnPixels(page, 'histogram-plot')).toBeGreaterThan(500);
    await page.screenshot({ path: path.join(ARTIFACTS, 'pool.png'), fullPage: true });

    // Upload a CSV through the import form.
    const csv = path.join(mkdtempSync(path.join(os.tmpdir(), 'poolq-upload-')), 'latencies.csv');
    writeFileSync(csv, 'host,latency_ms\n' + Array.from({ length: 50_000 }, (_, i) => `h${i % 7},${(i % 997) / 10}`).join('\n') + '\n');
    const input = await page.$('[data-testid=upload-file]');
    await input!.uploadFile(csv);
    await page.type('[data-testid=upload-column]', 'latency_ms');
    await page.click('[data-testid=upload-file] ~ button');
    await page.waitForFunction(
      () => (document.querySelector('[data-testid=upload-progress]') as HTMLProgressElement).dataset.phase === 'done',
      { timeout: 30_000 },
    );
    expect(await page.$eval('[data-testid=upload-progress]', (el) => (el as HTMLProgressElement).value)).toBe(100);
    expect(await page.$eval('[data-testid=upload-status]', (el) => el.textContent)).toMatch(/^100 % · done: 50,000 values imported/);
    await waitForCount(page, 52_000);
    await page.screenshot({ path: path.join(ARTIFACTS, 'pool-after-import.png'), fullPage: true });

    // An append from elsewhere arrives without touching the page, pushed over /ws.
    expect(await page.$eval('[data-testid=live]', (el) => (el as HTMLElement).dataset.channel)).toBe('websocket');
    await fetch(server.url('/pools/3/values'), { method: 'POST', body: '[1, 2, 3]' });
    await waitForCount(page, 52_003);
    expect(await shownCount(page)).toBe(52_003);

    // The append form.
    await page.type('[data-testid=append-values]', '4, 5');
    await page.click('[data-testid=append-values] ~ button');
    await waitForCount(page, 52_005);
    expect(errors).toEqual([]);
  }, 120_000);

  it('shows requests and latency by route on the server page', async () => {
    const { page, errors } = await newPage();
    await page.goto(server.url('/#/server'), { waitUntil: 'networkidle0' });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=route-table] tbody tr').length > 0);
    const routes = await page.$$eval('[data-testid=route-table] tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
    expect(routes).toContain('POST /add');
    await page.screenshot({ path: path.join(ARTIFACTS, 'server.png'), fullPage: true });
    expect(errors).toEqual([]);
  });
});

describe('the dashboard with --auth-token', () => {
  it('asks for the token, keeps it for the tab only, and then works', async () => {
    const server = await startServer(['--auth-token', 'browser-secret']);
    try {
      await fetch(server.url('/add'), {
        method: 'POST',
        headers: { authorization: 'Bearer browser-secret' },
        body: '{"poolId": 9, "poolValues": [1]}',
      });
      const { page } = await newPage();
      await page.goto(server.url('/'));
      await page.waitForSelector('#token-dialog[open]');
      await page.screenshot({ path: path.join(ARTIFACTS, 'token.png') });
      await page.type('#token-input', 'wrong');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('token-error')!.textContent === 'That token was refused.');
      await page.$eval('#token-input', (el) => ((el as HTMLInputElement).value = ''));
      await page.type('#token-input', 'browser-secret');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid=pool-link]');
      expect(await page.$$eval('[data-testid=pool-link]', (as) => as.map((a) => a.textContent))).toEqual(['9']);
      expect(await page.evaluate(() => sessionStorage.getItem('poolq-token'))).toBe('browser-secret');
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      // The pool page's live channel authenticates with the same token.
      await page.goto(server.url('/#/pools/9'));
      await page.waitForFunction(() => (document.querySelector('[data-testid=live]') as HTMLElement | null)?.dataset.channel !== undefined);
      expect(await page.$eval('[data-testid=live]', (el) => (el as HTMLElement).dataset.channel)).toBe('websocket');
      await fetch(server.url('/pools/9/values'), { method: 'POST', headers: { authorization: 'Bearer browser-secret' }, body: '[2, 3]' });
      await waitForCount(page, 3);
      // Another tab starts without it.
      const { page: other } = await newPage();
      await other.goto(server.url('/'));
      await other.waitForSelector('#token-dialog[open]');
    } finally {
      await server.stop();
    }
  }, 60_000);
});
