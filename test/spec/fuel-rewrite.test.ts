// Behavioural check of the fuel rewrite against the WebAssembly spec suite:
// every script runs three times (plain, fuel with a budget of 3 so that tick
// runs at almost every check, fuel with a large budget), and every command
// must have the same outcome in all three. The plain run is also checked
// against the script's expectations, which keeps the runner honest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { addFuel } from '../../src/runtime/prepare/fuel.ts';
import { FUEL_EXPORT } from '../../src/runtime/prepare/names.ts';
import { parseModule, type ModuleInfo } from '../../src/runtime/wasm/module.ts';
import { SPEC_SUITE_DIR } from '../../src/runtime/wasm/testing.ts';
import { readModule, readScript, type Action, type Command, type Value } from '../../scripts/spec/script.ts';
import { spectest } from '../../scripts/spec/spectest.ts';
import { callWrapped, describe, matches, unwrapResults, wrapperArgs } from '../../scripts/spec/values.ts';


function callExport(inst: Instance, field: string, args: Value[]): unknown[] {
  const fn = inst.instance.exports[field] as (...a: unknown[]) => unknown;
  if (typeof fn !== 'function') throw new Error(`no exported function ${field}`);
  const exp = inst.info.exports.find((e) => e.name === field && e.kind === 'func');
  if (!exp) throw new Error(`no exported function ${field}`);
  const sig = inst.info.functionSignature(exp.index);
  return unwrapResults(sig, callWrapped(fn, sig, wrapperArgs(args)));
}

// ---- script runner ----

interface Instance {
  instance: WebAssembly.Instance;
  info: ModuleInfo;
}

interface Variant {
  label: string;
  /** Fuel budget returned by tick; undefined: run the plain module. */
  budget?: number;
  ticks: number;
  /** Tick found the exported fuel global non-negative (contract violation). */
  badTicks: number;
  registry: Record<string, WebAssembly.ModuleImports>;
  named: Map<string, Instance>;
  current?: Instance;
}

function errorOutcome(e: unknown): string {
  if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
  if (e instanceof RangeError) return 'exhaustion';
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}`;
  return `throw: ${String(e)}`;
}

function instantiate(v: Variant, original: Uint8Array<ArrayBuffer>): Instance {
  const info = parseModule(original);
  const fuel = v.budget !== undefined;
  const bytes = fuel ? addFuel(original, info) : original;
  const imports: WebAssembly.Imports = { spectest: v.registry.spectest, ...v.registry };
  // Filled in after instantiation (a start function ticks before that).
  const made: { instance?: WebAssembly.Instance } = {};
  if (fuel) {
    const budget = v.budget!;
    imports.gate_engine = {
      tick: () => {
        v.ticks++;
        const g = made.instance?.exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
        if (g && (g.value as number) >= 0) v.badTicks++;
        return budget;
      },
    };
  }
  made.instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  return { instance: made.instance, info };
}

function runAction(v: Variant, action: Action): { outcome: string; values?: unknown[] } {
  const inst = action.module ? v.named.get(action.module) : v.current;
  if (!inst) return { outcome: 'no module' };
  try {
    if (action.type === 'get') {
      const g = inst.instance.exports[action.field] as WebAssembly.Global;
      const values = [g.value];
      return { outcome: values.map(describe).join(','), values };
    }
    const values = callExport(inst, action.field, action.args ?? []);
    return { outcome: values.map(describe).join(','), values };
  } catch (e) {
    return { outcome: errorOutcome(e) };
  }
}

interface Tally {
  commands: number;
  skipped: number;
  expectedMismatches: string[];
}

/** Run one command; returns its outcome as a comparable string. */
function runCommand(v: Variant, c: Command, tally: Tally | undefined): string {
  switch (c.type) {
    case 'module': {
      if (c.module_type === 'text' || !c.filename) return 'skipped';
      const bytes = readModule(SPEC_SUITE_DIR, c.filename);
      if (!WebAssembly.validate(bytes)) {
        // Nothing to instrument; the engine refuses such modules.
        v.current = undefined;
        return 'invalid';
      }
      try {
        const inst = instantiate(v, bytes);
        v.current = inst;
        if (c.name) v.named.set(c.name, inst);
        return 'ok';
      } catch (e) {
        v.current = undefined;
        return errorOutcome(e);
      }
    }
    case 'register': {
      const inst = c.name ? v.named.get(c.name) : v.current;
      if (inst && c.as) v.registry[c.as] = inst.instance.exports as WebAssembly.ModuleImports;
      return 'ok';
    }
    case 'assert_unlinkable':
    case 'assert_uninstantiable': {
      if (c.module_type === 'text' || !c.filename) return 'skipped';
      const bytes = readModule(SPEC_SUITE_DIR, c.filename);
      let outcome: string;
      if (!WebAssembly.validate(bytes)) outcome = 'invalid';
      else {
        try {
          instantiate(v, bytes);
          outcome = 'ok';
        } catch (e) {
          outcome = e instanceof WebAssembly.RuntimeError || e instanceof WebAssembly.LinkError ? 'refused' : errorOutcome(e);
        }
      }
      if (tally && outcome !== 'refused') tally.expectedMismatches.push(`line ${c.line} ${c.type}: ${outcome}`);
      return outcome;
    }
    case 'action':
    case 'assert_return':
    case 'assert_trap':
    case 'assert_exhaustion': {
      const { outcome, values } = runAction(v, c.action!);
      if (tally) {
        tally.commands++;
        let ok: boolean;
        if (c.type === 'assert_return') ok = values !== undefined && values.length === c.expected!.length && c.expected!.every((e, i) => matches(e, values[i]));
        else if (c.type === 'assert_trap') ok = outcome.startsWith('trap');
        else if (c.type === 'assert_exhaustion') ok = outcome === 'exhaustion';
        else ok = values !== undefined;
        if (!ok) tally.expectedMismatches.push(`line ${c.line} ${c.type} ${c.action!.field}: ${outcome}`);
      }
      return outcome;
    }
    default:
      // assert_invalid / assert_malformed are the parser tests' business.
      if (tally) tally.skipped++;
      return 'skipped';
  }
}

function newVariant(label: string, budget?: number): Variant {
  return { label, budget, ticks: 0, badTicks: 0, registry: { spectest: spectest() }, named: new Map() };
}

const present = existsSync(SPEC_SUITE_DIR);
const scripts = present
  ? readdirSync(SPEC_SUITE_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];

test('fuel-instrumented spec scripts behave like the plain ones', { skip: present ? false : `spec suite not found at ${SPEC_SUITE_DIR}` }, () => {
  const started = performance.now();
  let commands = 0;
  let ticksSmall = 0;
  let ticksLarge = 0;
  const mismatches: string[] = [];
  const expectedMismatches: string[] = [];
  for (const script of scripts) {
    const { commands: list } = readScript(SPEC_SUITE_DIR, script);
    const plain = newVariant('plain');
    const small = newVariant('fuel 3', 3);
    const large = newVariant('fuel 1e6', 1_000_000);
    const tally: Tally = { commands: 0, skipped: 0, expectedMismatches: [] };
    for (const c of list) {
      const a = runCommand(plain, c, tally);
      const b = runCommand(small, c, undefined);
      const d = runCommand(large, c, undefined);
      if (a !== b || a !== d) mismatches.push(`${script}:${c.line} ${c.type}: plain ${a} | fuel(3) ${b} | fuel(1e6) ${d}`);
    }
    for (const v of [small, large]) {
      if (v.badTicks) mismatches.push(`${script}: tick called ${v.badTicks} times while the fuel global was not negative (${v.label})`);
    }
    commands += tally.commands;
    ticksSmall += small.ticks;
    ticksLarge += large.ticks;
    expectedMismatches.push(...tally.expectedMismatches.map((m) => `${script} ${m}`));
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `spec behaviour: ${scripts.length} scripts, ${commands} invoke/get commands x3 in ${seconds} s; ` +
      `ticks ${ticksSmall} (budget 3), ${ticksLarge} (budget 1e6); ` +
      `${expectedMismatches.length} plain results differ from the script's expectation`,
  );
  for (const m of expectedMismatches.slice(0, 20)) console.log(`  expectation: ${m}`);
  assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} commands behave differently with fuel`);
  assert.ok(ticksSmall > ticksLarge);
});
