// Commands on one instance (wait, kill, suspend, resume, snapshot, delete,
// update, status) and the instance list.

import { instanceIdError } from '../../server/api/ids.ts';
import { CliError } from '../errors.ts';
import { INSTANCE_PATH } from '../http-client.ts';
import { idFromLocation } from '../module-arg.ts';
import { formatTable, paint, printJSON, statusStyle, tagsText } from '../output.ts';
import type { Session } from '../session.ts';
import { parseStatus, statusText, type ApiStatus } from '../status.ts';
import { downloadModule, writeOutput } from '../transfer.ts';

export interface InstanceInfo {
  instance: string;
  module?: string;
  status?: ApiStatus;
  transient?: boolean;
  debugging?: boolean;
  tags?: string[];
}

/** Catch typos before a round trip, in the server's words: instance ids are canonical UUID v4. */
export function instanceArg(id: string): string {
  const problem = instanceIdError(id);
  if (problem) throw new CliError(`not an instance id: ${id}: ${problem}`);
  return id;
}

async function action(s: Session, id: string, actions: string[], extra: Array<[string, string]> = []) {
  return s.client.empty({
    method: 'POST',
    path: INSTANCE_PATH + instanceArg(id),
    query: [...actions.map((a): [string, string] => ['action', a]), ...extra],
  });
}

function printStatus(s: Session, status: ApiStatus): void {
  if (s.json) printJSON(status);
  else {
    const text = statusText(status);
    process.stdout.write(`${paint(text, statusStyle(text))}\n`);
  }
}

/** wait, or kill/suspend followed by a wait when the `wait` setting is on. */
export async function stopCommand(s: Session, id: string, verb: 'wait' | 'kill' | 'suspend'): Promise<void> {
  const waiting = verb === 'wait' || s.config.wait;
  const res = await action(s, id, verb === 'wait' ? ['wait'] : waiting ? [verb, 'wait'] : [verb]);
  if (waiting) printStatus(s, parseStatus(res.headers['gate-status'] as string | undefined));
}

export async function resumeCommand(s: Session, id: string, fn: string | undefined, debug: boolean | undefined): Promise<void> {
  const extra: Array<[string, string]> = [];
  const name = fn ?? (s.config.function || undefined);
  if (name) extra.push(['function', name]);
  if (debug || s.config.debuglog) extra.push(['log', '*']);
  await action(s, id, ['resume'], extra);
}

export async function snapshotCommand(s: Session, id: string, tags: readonly string[], file: string | undefined): Promise<string> {
  const res = await action(s, id, ['snapshot'], [...s.config.moduletags, ...tags].map((t): [string, string] => ['module-tag', t]));
  const module = idFromLocation(res.headers.location);
  if (file !== undefined) await writeOutput(await downloadModule(s.client, module), file);
  if (s.json) printJSON({ module });
  else if (file !== '-') process.stdout.write(`${module}\n`);
  return module;
}

export async function deleteCommand(s: Session, id: string): Promise<void> {
  await action(s, id, ['delete']);
}

export async function updateCommand(s: Session, id: string, tags: readonly string[]): Promise<void> {
  const body = Buffer.from(JSON.stringify({ persist: true, tags: [...s.config.instancetags, ...tags] }));
  const info = await s.client.json<InstanceInfo>({
    method: 'POST',
    path: INSTANCE_PATH + instanceArg(id),
    query: [['action', 'update']],
    headers: { 'Content-Type': 'application/json' },
    body,
  });
  if (s.json) printJSON(info);
}

export async function instanceInfo(s: Session, id: string): Promise<InstanceInfo> {
  return s.client.json<InstanceInfo>({ method: 'POST', path: INSTANCE_PATH + instanceArg(id) });
}

export async function statusCommand(s: Session, id: string): Promise<void> {
  const info = await instanceInfo(s, id);
  if (s.json) {
    printJSON(info);
    return;
  }
  const text = statusText(info.status ?? {});
  process.stdout.write(`${paint(text, statusStyle(text))} ${tagsText(info.tags)}\n`);
}

export async function instancesCommand(s: Session): Promise<void> {
  const list = await s.client.json<{ instances?: InstanceInfo[] }>({ method: 'POST', path: INSTANCE_PATH });
  const instances = (list.instances ?? []).sort((a, b) => a.instance.localeCompare(b.instance));
  if (s.json) {
    printJSON(instances);
    return;
  }
  const rows = instances.map((i) => [i.instance, statusText(i.status ?? {}), (i.module ?? '').slice(0, 12), tagsText(i.tags)]);
  process.stdout.write(
    formatTable([{ title: 'INSTANCE' }, { title: 'STATUS', style: statusStyle }, { title: 'MODULE', style: () => 'dim' }, { title: 'TAGS' }], rows),
  );
}
