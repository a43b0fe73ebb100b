// Real Chromium for the browser tests and the bench: Debian's `chromium`
// (or GATE_CHROMIUM) driven by playwright-core. Without it the browser
// tests are skipped with a line saying how to get it, unless
// GATE_REQUIRE_BROWSER=1 (CI), where its absence fails them.

import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.GATE_CHROMIUM || '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `no Chromium at ${CHROMIUM}: install it (apt-get install chromium) or set GATE_CHROMIUM`;
  if (process.env.GATE_REQUIRE_BROWSER === '1') throw new Error(`${why} (GATE_REQUIRE_BROWSER=1 requires the browser tests)`);
  return why;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
}
