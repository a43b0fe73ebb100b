// Live migration between the server and this browser, keeping the instance
// id and the conversation: the instance is suspended where it runs (its
// connection ends after the last output it wrote has been shown), its
// snapshot launched on the other side (a running one continues there, its
// origin stream waiting for the next client), the terminal joined to it
// there, and only then is the old copy removed. If the other side refuses,
// the instance is resumed where it was.

import type { BrowserRuntime } from '../browser/client.ts';
import { sha256Hex } from '../browser/modules.ts';
import type { GateServer } from './server-api.ts';
import type { Terminal } from './terminal.ts';

export interface Sides {
  server: GateServer;
  runtime: BrowserRuntime;
  terminal: Terminal;
  principal: string;
}

/** Move a server instance into this browser. */
export async function migrateToBrowser(s: Sides, id: string): Promise<void> {
  const shown = s.terminal.instance === id;
  const wasRunning = (await s.server.info(id)).status.state === 'RUNNING';
  if (wasRunning) await s.server.act(id, ['suspend', 'wait']);
  await s.terminal.detached(id);
  let snapshot: string | undefined;
  try {
    snapshot = await s.server.snapshot(id);
    const bytes = await s.server.download(snapshot);
    await s.runtime.launch(id, bytes, { principal: s.principal, suspend: !wasRunning });
  } catch (error) {
    if (snapshot) await s.server.unpin(snapshot).catch(() => {});
    if (wasRunning) await s.server.act(id, ['resume']).catch(() => {});
    if (shown) void s.terminal.attach(id, 'server', s.server.io(id));
    throw error;
  }
  if (shown) {
    s.terminal.note('[moved into this browser]');
    void s.terminal.attach(id, 'browser', s.runtime.connect(id));
  }
  await s.server.act(id, ['delete']);
  await s.server.unpin(snapshot);
}

/** Move an instance of this browser to the server. */
export async function migrateToServer(s: Sides, id: string): Promise<void> {
  const shown = s.terminal.instance === id;
  const wasRunning = s.runtime.statuses.get(id)?.state === 'RUNNING';
  if (wasRunning) await s.runtime.suspend(id);
  await s.terminal.detached(id);
  try {
    const bytes = await s.runtime.snapshot(id);
    await s.server.launch(await sha256Hex(bytes), bytes, { instance: id, suspend: !wasRunning });
  } catch (error) {
    if (wasRunning) await s.runtime.resume(id).catch(() => {});
    if (shown) void s.terminal.attach(id, 'browser', s.runtime.connect(id));
    throw error;
  }
  if (shown) {
    s.terminal.note('[moved to the server]');
    void s.terminal.attach(id, 'server', s.server.io(id));
  }
  await s.runtime.delete(id);
}
