// The web console in real Chromium against gate-server as a user starts it
// (a process on a loopback port, instances in its worker threads): programs run on the server and in the browser, input typed into the
// page reaches them, a counting program moves server → browser → server
// without a lost or repeated number, and a snapshot downloaded from the
// browser continues on the server. Skipped (saying why) without Chromium.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { makeHome, openSSHKey, principalOfKey, startServer, type ServerProcess, type TestHome } from '../cli/helpers.ts';
import { root } from '../helpers.ts';
import { browserMissing, launchChromium } from './chromium.ts';

const example = (name: string) => path.join(root, 'guest', 'examples', name);
const TIMEOUT = 30_000;

/** The program's output as shown, without the console's own notes. */
function output(page: Page): Promise<string> {
  return page.evaluate(() => {
    const out = document.querySelector('[data-testid=output]')!;
    let text = '';
    for (const node of out.childNodes) if (node.nodeType === Node.TEXT_NODE) text += node.textContent;
    return text;
  });
}

/** The numbers a counter wrote, checked to be 0, 1, 2, … with nothing lost or repeated. */
async function counted(page: Page): Promise<number[]> {
  const lines = (await output(page)).split('\n');
  lines.pop(); // a line being written
  const numbers = lines.map(Number);
  numbers.forEach((n, i) => assert.equal(n, i, `line ${i} is ${lines[i]}: ${lines.slice(Math.max(0, i - 3), i + 3).join(' ')}`));
  return numbers;
}

/** Wait until the counter has written more than `n` numbers. */
async function countBeyond(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const out = document.querySelector('[data-testid=output]')!;
      let text = '';
      for (const node of out.childNodes) if (node.nodeType === Node.TEXT_NODE) text += node.textContent;
      return text.split('\n').length - 1 > n;
    },
    n,
    { timeout: TIMEOUT },
  );
}

const row = (page: Page, where: 'server' | 'browser') => page.locator(`[data-testid=instances] tr[data-where=${where}]`);

async function choose(page: Page, file: string, fn: string): Promise<void> {
  await page.getByTestId('module-file').setInputFiles(file);
  await page.getByTestId('module-name').filter({ hasText: path.basename(file) }).waitFor();
  await page.getByTestId('function').fill(fn);
}

async function generateKey(page: Page): Promise<void> {
  await page.getByTestId('key-generate').click();
  await page.getByTestId('principal').filter({ hasText: /^ed25519:/ }).waitFor();
}

const missing = browserMissing();

describe('web console in Chromium', { skip: missing }, () => {
  let home: TestHome;
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let tmp: string;

  before(async () => {
    home = makeHome();
    tmp = home.dir;
    server = await startServer(home, 'server');
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await home?.cleanup();
  });

  /** A fresh page (its own storage, so no key) at the console. */
  async function open(): Promise<Page> {
    await context?.close();
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`${server.url}/console/`);
    await page.getByTestId('principal').filter({ hasText: 'anonymous' }).waitFor();
    assert.deepEqual(problems, []);
    return page;
  }

  it('runs hello on the server and in the browser', async () => {
    const page = await open();
    await choose(page, example('hello.wasm'), 'greet');
    await page.getByTestId('run-server').click();
    await page.getByTestId('output').filter({ hasText: 'hello, world' }).waitFor();
    await page.getByTestId('output').filter({ hasText: '[TERMINATED]' }).waitFor();

    await page.getByTestId('run-browser').click();
    await page.getByTestId('output').filter({ hasText: 'hello, world' }).waitFor();
    assert.equal(await output(page), 'hello, world\n');
    await row(page, 'browser').and(page.locator('[data-state=HALTED]')).waitFor();
  });

  it('sends typed input to echo, in the browser and on the server', async () => {
    const page = await open();
    await choose(page, example('echo.wasm'), 'echo');
    for (const where of ['browser', 'server'] as const) {
      await page.getByTestId(`run-${where}`).click();
      await page.getByTestId('input').fill(`hello from the page to the ${where}`);
      await page.getByTestId('input').press('Enter');
      await page.getByTestId('output').filter({ hasText: `hello from the page to the ${where}` }).waitFor();
      await page.getByTestId('input').fill('second line');
      await page.getByTestId('send').click();
      await page.getByTestId('output').filter({ hasText: 'second line' }).waitFor();
      assert.equal(await output(page), `hello from the page to the ${where}\nsecond line\n`);
    }
    // End of input ends the browser's echo.
    await page.getByTestId('run-browser').click();
    await page.getByTestId('input').fill('last');
    await page.getByTestId('input').press('Enter');
    await page.getByTestId('end-input').click();
    await row(page, 'browser').and(page.locator('[data-state=HALTED]')).first().waitFor();
  });

  it('moves a running counter server → browser → server without losing or repeating a number', async () => {
    const page = await open();
    await generateKey(page);
    await choose(page, example('counter.wasm'), 'count');
    await page.getByTestId('run-server').click();
    await row(page, 'server').and(page.locator('[data-state=RUNNING]')).waitFor();
    const id = await row(page, 'server').getAttribute('data-instance');
    await countBeyond(page, 5);

    await row(page, 'server').getByTestId('migrate-to-browser').click();
    await page.locator(`tr[data-instance="${id}"][data-where=browser][data-state=RUNNING]`).waitFor();
    await row(page, 'server').waitFor({ state: 'detached' });
    const onServer = (await counted(page)).length;
    await countBeyond(page, onServer + 5);

    await row(page, 'browser').getByTestId('migrate-to-server').click();
    await page.locator(`tr[data-instance="${id}"][data-where=server][data-state=RUNNING]`).waitFor();
    await row(page, 'browser').waitFor({ state: 'detached' });
    const inBrowser = (await counted(page)).length;
    await countBeyond(page, inBrowser + 5);
    const numbers = await counted(page);
    assert.ok(numbers.length > inBrowser + 5 && inBrowser > onServer + 5 && onServer > 5, `${onServer} ${inBrowser} ${numbers.length}`);

    await row(page, 'server').getByTestId('kill').click();
    await page.locator(`tr[data-instance="${id}"][data-where=server][data-state=KILLED]`).waitFor();
  });

  it('launches a snapshot downloaded from the browser on the server, where it counts on', async () => {
    const page = await open();
    await generateKey(page);
    await choose(page, example('counter.wasm'), 'count');
    await page.getByTestId('run-browser').click();
    await countBeyond(page, 5);
    await row(page, 'browser').getByTestId('suspend').click();
    await row(page, 'browser').and(page.locator('[data-state=SUSPENDED]')).waitFor();
    // Resumed, it counts on in the same terminal.
    await row(page, 'browser').getByTestId('resume').click();
    await row(page, 'browser').and(page.locator('[data-state=RUNNING]')).waitFor();
    await countBeyond(page, (await counted(page)).length + 3);
    await row(page, 'browser').getByTestId('suspend').click();
    await row(page, 'browser').and(page.locator('[data-state=SUSPENDED]')).waitFor();
    const before = await counted(page);

    const downloading = page.waitForEvent('download');
    await row(page, 'browser').getByTestId('snapshot').click();
    const file = path.join(tmp, 'counter.snap.wasm');
    await (await downloading).saveAs(file);

    await page.getByTestId('module-file').setInputFiles(file);
    await page.getByTestId('module-name').filter({ hasText: 'snapshot' }).waitFor();
    assert.equal(await page.getByTestId('function').inputValue(), '');
    await page.getByTestId('run-server').click();
    await row(page, 'server').and(page.locator('[data-state=RUNNING]')).waitFor();
    await countBeyond(page, 5);
    // The server's instance continues where the browser's stopped.
    const lines = (await output(page)).split('\n').filter((l) => l !== '');
    const numbers = lines.map(Number);
    assert.equal(numbers[0], before.length, lines.slice(0, 5).join(' '));
    numbers.forEach((n, i) => assert.equal(n, before.length + i));

    // The browser's instance is still there, suspended: kill and delete it.
    await row(page, 'browser').getByTestId('kill').click();
    await row(page, 'browser').and(page.locator('[data-state=KILLED]')).waitFor();
    await row(page, 'browser').getByTestId('delete').click();
    await row(page, 'browser').waitFor({ state: 'detached' });
  });

  it('imports an OpenSSH key and acts as its principal', async () => {
    const page = await open();
    const encrypted = path.join(tmp, 'id_encrypted');
    writeFileSync(encrypted, openSSHKey({ encrypted: true }));
    await page.getByTestId('key-import').setInputFiles(encrypted);
    await page.getByTestId('message').filter({ hasText: 'the key has a passphrase' }).waitFor();

    const key = openSSHKey();
    const file = path.join(tmp, 'id_ed25519');
    writeFileSync(file, key);
    await page.getByTestId('key-import').setInputFiles(file);
    await page.getByTestId('principal').filter({ hasText: principalOfKey(key) }).waitFor();
    await choose(page, example('hello.wasm'), 'greet');
    await page.getByTestId('run-server').click();
    await page.getByTestId('output').filter({ hasText: 'hello, world' }).waitFor();
    await page.locator('[data-testid=modules] li').first().waitFor();
    await row(page, 'server').and(page.locator('[data-state=HALTED]')).waitFor();
  });
});
