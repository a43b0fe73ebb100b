// Commands on modules: the pin list, one module's tags, pin and unpin,
// import and export of files, and pull/push between two servers.

import { MODULE_PATH, type GateClient } from '../http-client.ts';
import { idFromLocation, moduleIdArg, readModuleFile, resolveModuleArg } from '../module-arg.ts';
import { sha256Hex } from '../sha256.ts';
import { formatTable, printJSON, tagsText } from '../output.ts';
import type { Session } from '../session.ts';
import { downloadModule, hasModule, uploadModule, writeOutput } from '../transfer.ts';

interface ModuleInfo {
  module: string;
  tags?: string[];
}

function tagQuery(tags: readonly string[]): Array<[string, string]> {
  return tags.map((t) => ['module-tag', t]);
}

export async function modulesCommand(s: Session): Promise<void> {
  const list = await s.client.json<{ modules?: ModuleInfo[] }>({ method: 'POST', path: MODULE_PATH });
  const modules = (list.modules ?? []).sort((a, b) => a.module.localeCompare(b.module));
  if (s.json) printJSON(modules);
  else process.stdout.write(formatTable([{ title: 'MODULE' }, { title: 'TAGS' }], modules.map((m) => [m.module, tagsText(m.tags)])));
}

export async function showCommand(s: Session, module: string): Promise<void> {
  const info = await s.client.json<ModuleInfo>({ method: 'POST', path: MODULE_PATH + moduleIdArg(module) });
  if (s.json) printJSON(info);
  else process.stdout.write(`${tagsText(info.tags)}\n`);
}

/** pin MODULE [TAG...]: a known id, a source path (fetched by the server), or a file (uploaded). */
export async function pinCommand(s: Session, moduleArg: string, tags: readonly string[]): Promise<void> {
  const m = await resolveModuleArg(moduleArg);
  const all = [...s.config.moduletags, ...tags];
  let id: string;
  if (m.kind === 'file') {
    await uploadModule(s.client, m.id, m.bytes, all);
    id = m.id;
  } else if (m.kind === 'source') {
    const res = await s.client.empty({ method: 'POST', path: `module/${m.path}`, query: [['action', 'pin'], ...tagQuery(all)] });
    id = idFromLocation(res.headers.location);
  } else {
    await s.client.empty({ method: 'POST', path: MODULE_PATH + m.id, query: [['action', 'pin'], ...tagQuery(all)] });
    id = m.id;
  }
  if (s.json) printJSON({ module: id });
  else if (m.kind !== 'id') process.stdout.write(`${id}\n`);
}

export async function unpinCommand(s: Session, module: string): Promise<void> {
  await s.client.empty({ method: 'POST', path: MODULE_PATH + moduleIdArg(module), query: [['action', 'unpin']] });
}

export async function importCommand(s: Session, file: string, tags: readonly string[]): Promise<void> {
  const bytes = await readModuleFile(file);
  const id = sha256Hex(bytes);
  await uploadModule(s.client, id, bytes, [...s.config.moduletags, ...tags]);
  if (s.json) printJSON({ module: id });
  else process.stdout.write(`${id}\n`);
}

export async function exportCommand(s: Session, module: string, file: string | undefined): Promise<void> {
  await writeOutput(await downloadModule(s.client, moduleIdArg(module)), file);
}

/** Copy a module from one server to another (pinned there with the configured tags). */
export async function copyModule(from: GateClient, to: GateClient, module: string, tags: readonly string[]): Promise<void> {
  const id = moduleIdArg(module);
  const bytes = await downloadModule(from, id);
  if (tags.length === 0 && (await hasModule(to, id))) return;
  await uploadModule(to, id, bytes, tags);
}
