// `gate migrate ID A B`: move a live instance from server A to server B
// under the same id. A running instance is suspended on A, snapshotted,
// the snapshot module is copied to B and launched there (resuming where it
// stopped), and only then is it removed from A. If B refuses, the instance
// is resumed on A and stays there.

import { CliError } from '../errors.ts';
import { MODULE_PATH, type GateClient } from '../http-client.ts';
import { idFromLocation } from '../module-arg.ts';
import { printJSON } from '../output.ts';
import type { Globals } from '../session.ts';
import { openClient } from '../session.ts';
import { parseStatus, statusText } from '../status.ts';
import { downloadModule, uploadBody } from '../transfer.ts';
import { instanceArg, type InstanceInfo } from './instance.ts';
import { INSTANCE_PATH } from '../http-client.ts';

/** `local` names the daemon; anything else is a server address. */
function addressOf(arg: string): string | undefined {
  return arg === 'local' ? undefined : arg;
}

function post(client: GateClient, id: string, actions: string[], extra: Array<[string, string]> = []) {
  return client.empty({ method: 'POST', path: INSTANCE_PATH + id, query: [...actions.map((a): [string, string] => ['action', a]), ...extra] });
}

export async function migrateCommand(g: Globals, idArg: string, from: string, to: string, keep: boolean): Promise<void> {
  const id = instanceArg(idArg);
  if (from === to) throw new CliError('source and destination are the same', 2);
  const a = await openClient(addressOf(from), g.config);
  const b = await openClient(addressOf(to), g.config);

  const info = await a.json<InstanceInfo>({ method: 'POST', path: INSTANCE_PATH + id });
  const wasRunning = info.status?.state === 'RUNNING';
  if (wasRunning) {
    const res = await post(a, id, ['suspend', 'wait']);
    const status = parseStatus(res.headers['gate-status'] as string | undefined);
    if (status.state === 'RUNNING') throw new CliError(`instance did not suspend: ${statusText(status)}`);
  }

  let moduleId: string | undefined;
  try {
    moduleId = idFromLocation((await post(a, id, ['snapshot'])).headers.location);
    const bytes = await downloadModule(a, moduleId);
    const query: Array<[string, string]> = [['action', 'launch'], ['action', 'pin'], ['instance', id]];
    if (!wasRunning) query.push(['action', 'suspend']);
    for (const t of info.tags ?? []) query.push(['instance-tag', t]);
    await b.empty({
      method: 'POST',
      path: MODULE_PATH + moduleId,
      query,
      headers: { 'Content-Type': 'application/wasm', 'Content-Length': String(bytes.byteLength) },
      body: uploadBody(bytes, 'migrate'),
    });
  } catch (error) {
    if (wasRunning) await post(a, id, ['resume']).catch(() => {});
    throw error;
  }

  if (!keep) {
    await post(a, id, ['delete']);
    await a.empty({ method: 'POST', path: MODULE_PATH + moduleId, query: [['action', 'unpin']] }).catch(() => {});
  }
  if (g.json) printJSON({ instance: id, module: moduleId });
  else process.stdout.write(`${id}\n`);
}
