// Run one script's commands in order against one store, and judge each.

import { Cause } from '../../src/runtime/instance/status.ts';
import { readModule, type Command, type Script } from './script.ts';
import { spectest } from './spectest.ts';
import { errorText, InstantiateFailure, type Handle, type Outcome, type Store } from './store.ts';
import { expectedCause } from './traps.ts';
import { describe, matches } from './values.ts';

export type Verdict = 'passed' | 'failed' | 'skipped';

export interface CommandResult {
  index: number;
  line: number;
  type: string;
  verdict: Verdict;
  /** Why it failed or was skipped. */
  detail?: string;
  /**
   * The line of the command whose failure this one follows from (a module
   * that did not instantiate); its own line otherwise.
   */
  rootLine: number;
}

export interface ScriptResult {
  file: string;
  results: CommandResult[];
}

const TEXT_MODULE = 'text module (the suite keeps only binaries)';

export async function runScript(dir: string, script: Script, store: Store): Promise<ScriptResult> {
  const registry: Record<string, WebAssembly.ModuleImports> = { spectest: spectest() };
  const named = new Map<string, Handle>();
  // Lines of modules that failed to instantiate, by name ('' for the current one).
  const failedAt = new Map<string, number>();
  let current: Handle | undefined;
  const results: CommandResult[] = [];

  const moduleFor = (name: string | undefined): { handle?: Handle; failedLine?: number } => {
    if (name !== undefined) return { handle: named.get(name), failedLine: failedAt.get(name) };
    return { handle: current, failedLine: failedAt.get('') };
  };

  const instantiate = async (c: Command): Promise<Handle> => store.instantiate(readModule(dir, c.filename!), { ...registry });

  for (let index = 0; index < script.commands.length; index++) {
    const c = script.commands[index];
    const result: CommandResult = { index, line: c.line, type: c.type, verdict: 'passed', rootLine: c.line };
    const fail = (detail: string, rootLine = c.line) => {
      result.verdict = 'failed';
      result.detail = detail;
      result.rootLine = rootLine;
    };
    const skip = (detail: string) => {
      result.verdict = 'skipped';
      result.detail = detail;
    };
    try {
      switch (c.type) {
        case 'module': {
          if (c.module_type === 'text' || !c.filename) {
            skip(TEXT_MODULE);
            break;
          }
          current = undefined;
          failedAt.delete('');
          try {
            current = await instantiate(c);
            if (c.name) {
              named.set(c.name, current);
              failedAt.delete(c.name);
            }
          } catch (error) {
            failedAt.set('', c.line);
            if (c.name) failedAt.set(c.name, c.line);
            fail(`module: ${error instanceof InstantiateFailure ? `${error.stage}: ${error.message}` : errorText(error)}`);
          }
          break;
        }
        case 'register': {
          const { handle, failedLine } = moduleFor(c.name);
          if (!handle) {
            fail('register: no module', failedLine);
            break;
          }
          handle.registered = true;
          registry[c.as!] = store.exports(handle);
          break;
        }
        case 'action':
        case 'assert_return':
        case 'assert_trap':
        case 'assert_exhaustion': {
          const action = c.action!;
          const { handle, failedLine } = moduleFor(action.module);
          if (!handle) {
            fail(`${action.field}: no module`, failedLine);
            break;
          }
          const outcome: Outcome =
            action.type === 'get' ? store.get(handle, action.field) : await store.invoke(handle, action.field, action.args ?? []);
          const problem = judge(c, outcome);
          if (problem) fail(`${action.field}: ${problem}`);
          else if (outcome.skip) skip(outcome.skip);
          break;
        }
        case 'assert_invalid':
        case 'assert_malformed': {
          if (c.module_type === 'text' || !c.filename) {
            skip(TEXT_MODULE);
            break;
          }
          const refusal = await store.refusal(readModule(dir, c.filename));
          if (refusal === undefined) fail(`accepted a module the spec calls ${c.type === 'assert_invalid' ? 'invalid' : 'malformed'} (${c.text})`);
          break;
        }
        case 'assert_unlinkable':
        case 'assert_uninstantiable': {
          if (c.module_type === 'text' || !c.filename) {
            skip(TEXT_MODULE);
            break;
          }
          const want = c.type === 'assert_unlinkable' ? 'link' : 'trap';
          try {
            await instantiate(c);
            fail(`instantiated a module the spec calls ${want === 'link' ? 'unlinkable' : 'uninstantiable'} (${c.text})`);
          } catch (error) {
            if (!(error instanceof InstantiateFailure)) throw error;
            if (error.stage !== want) fail(`refused at the wrong stage (${error.stage}, expected ${want}): ${error.message}`);
          }
          break;
        }
        default:
          skip(`unknown command ${c.type}`);
      }
    } catch (error) {
      fail(`runner: ${errorText(error)}`);
    }
    results.push(result);
  }
  return { file: script.file, results };
}

/** What is wrong with an action's outcome for this command, or undefined. */
function judge(c: Command, outcome: Outcome): string | undefined {
  const got = (): string => {
    if (outcome.kind === 'values') return outcome.values.map(describe).join(', ') || 'no values';
    if (outcome.kind === 'trap') return `trap ${outcome.cause} (${outcome.message})`;
    return outcome.message;
  };
  switch (c.type) {
    case 'action':
      return outcome.kind === 'values' ? undefined : `got ${got()}`;
    case 'assert_return': {
      const expected = c.expected ?? [];
      if (outcome.kind !== 'values') return `expected values, got ${got()}`;
      if (outcome.values.length !== expected.length || !expected.every((e, i) => matches(e, outcome.values[i]))) {
        return `expected ${expected.map((e) => JSON.stringify(e.value)).join(', ')}, got ${got()}`;
      }
      return undefined;
    }
    case 'assert_trap':
    case 'assert_exhaustion': {
      const want = c.type === 'assert_exhaustion' ? Cause.CALL_STACK_EXHAUSTED : expectedCause(c.text ?? '');
      if (want === undefined) return `no Gate cause is mapped to trap text "${c.text}"`;
      if (outcome.kind !== 'trap' || outcome.cause !== want) return `expected trap ${want} ("${c.text}"), got ${got()}`;
      return undefined;
    }
    default:
      return `not an action command: ${c.type}`;
  }
}
