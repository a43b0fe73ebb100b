// `gate --version` and `gate version` print the package's version.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { VERSION } from '../../src/cli/version.ts';
import { root } from '../helpers.ts';
import { GATE, run } from './helpers.ts';

describe('gate version', () => {
  it('matches package.json', async () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(VERSION, pkg.version);
    const r = await run(GATE, ['--version'], process.env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });
});
