// The web console (docs/console.md), served by gate-server at /console/:
// choose a program, run it in this browser (in a Web Worker, see
// src/browser) or on the server, talk to it, manage the principal's
// instances and modules, take snapshots, and move live instances between
// the server and the browser.

import { BrowserRuntime } from '../browser/client.ts';
import { sha256Hex } from '../browser/modules.ts';
import { statusToJSON, type Status } from '../runtime/instance/status.ts';
import { forgetIdentity, generateIdentity, importIdentity, loadIdentity, type Identity } from './identity.ts';
import { InstanceList, statusText, type InstanceAction, type InstanceRow } from './instance-list.ts';
import { migrateToBrowser, migrateToServer } from './migrate.ts';
import { GateServer, type ApiStatus, type ServerConnectionEnd } from './server-api.ts';
import { Terminal, type Where } from './terminal.ts';

const POLL_MS = 1000;
/** The terminal's name for an anonymous call (it has no instance id). */
const CALL = 'call';

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`console page lacks #${id}`);
  return e as T;
}

const ui = {
  principal: element('principal'),
  keyGenerate: element<HTMLButtonElement>('key-generate'),
  keyImport: element<HTMLInputElement>('key-import'),
  keyImportLabel: element('key-import-label'),
  keyForget: element<HTMLButtonElement>('key-forget'),
  drop: element('drop'),
  moduleFile: element<HTMLInputElement>('module-file'),
  moduleName: element('module-name'),
  function: element<HTMLInputElement>('function'),
  functions: element('functions'),
  runBrowser: element<HTMLButtonElement>('run-browser'),
  runServer: element<HTMLButtonElement>('run-server'),
  message: element('message'),
  attached: element('attached'),
  output: element('output'),
  inputForm: element<HTMLFormElement>('input-form'),
  input: element<HTMLInputElement>('input'),
  endInput: element<HTMLButtonElement>('end-input'),
  instances: element('instances'),
  instancesNote: element('instances-note'),
  modules: element('modules'),
  modulesNote: element('modules-note'),
};

/** The chosen program or snapshot. */
interface Program {
  name: string;
  bytes: Uint8Array;
  hash: string;
  snapshot: boolean;
}

let identity: Identity | null = null;
let program: Program | null = null;

const server = new GateServer(location.origin, () => identity);
const worker = new Worker('worker.js', { type: 'module' });
const runtime = new BrowserRuntime(worker);
const terminal = new Terminal(ui.output, () => {
  const id = terminal.instance;
  ui.attached.textContent = id === undefined ? '' : id === CALL ? '— a call on the server' : `— instance ${id.slice(0, 8)} (${terminal.where})`;
  list.setShown(id);
});
const list = new InstanceList(ui.instances, (action, row) => void act(action, row));

function say(text: string, error = false): void {
  ui.message.textContent = text;
  ui.message.classList.toggle('error', error);
}

function failed(error: unknown): void {
  say((error as Error)?.message ?? String(error), true);
}

const apiStatus = (s: Status): ApiStatus => statusToJSON(s) as unknown as ApiStatus;

// ---- identity ----

function showIdentity(): void {
  ui.principal.textContent = identity ? identity.principal : 'anonymous';
  ui.principal.title = identity ? 'requests are signed with this key, kept in this browser' : 'no key: programs run on the server as anonymous calls';
  ui.keyGenerate.hidden = identity !== null;
  ui.keyImportLabel.hidden = identity !== null;
  ui.keyForget.hidden = identity === null;
  list.setPrincipal(identity !== null);
  ui.instancesNote.textContent = identity ? '' : 'Instances on the server need a key: generate or import one above.';
  if (identity) void refresh();
  else {
    list.setServer([]);
    ui.modules.textContent = '';
  }
}

ui.keyGenerate.addEventListener('click', () => {
  generateIdentity().then((id) => {
    identity = id;
    showIdentity();
    say('A new key was generated and kept in this browser.');
  }, failed);
});

ui.keyImport.addEventListener('change', () => {
  const file = ui.keyImport.files?.[0];
  ui.keyImport.value = '';
  if (!file) return;
  file
    .text()
    .then(importIdentity)
    .then((id) => {
      identity = id;
      showIdentity();
      say(`Imported the key from ${file.name}.`);
    }, failed);
});

ui.keyForget.addEventListener('click', () => {
  if (!confirm('Forget the key? Instances and modules on the server stay with it; without the key this console cannot reach them.')) return;
  forgetIdentity().then(() => {
    identity = null;
    showIdentity();
  }, failed);
});

// ---- the program ----

async function choose(name: string, bytes: Uint8Array): Promise<void> {
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (error) {
    program = null;
    ui.runBrowser.disabled = ui.runServer.disabled = true;
    throw new Error(`${name}: not a WebAssembly module (${(error as Error).message})`);
  }
  const snapshot = WebAssembly.Module.customSections(module, 'gate.snapshot').length > 0;
  const functions = WebAssembly.Module.exports(module)
    .filter((e) => e.kind === 'function' && /^[A-Za-z0-9._-]{1,31}$/.test(e.name))
    .map((e) => e.name);
  program = { name, bytes, hash: await sha256Hex(bytes), snapshot };
  ui.moduleName.textContent = `${name}: ${snapshot ? 'snapshot' : 'program'}, ${bytes.byteLength} bytes`;
  ui.functions.replaceChildren(...functions.map((f) => Object.assign(document.createElement('option'), { value: f })));
  if (snapshot || functions.includes('_start')) ui.function.value = '';
  else if (!functions.includes(ui.function.value)) ui.function.value = functions[0] ?? '';
  ui.runBrowser.disabled = ui.runServer.disabled = false;
  say(snapshot ? 'A snapshot continues where it stopped (a halted one runs the function given).' : '');
}

function chooseFile(file: File | undefined): void {
  if (!file) return;
  file
    .arrayBuffer()
    .then((b) => choose(file.name, new Uint8Array(b)))
    .catch(failed);
}

ui.moduleFile.addEventListener('change', () => chooseFile(ui.moduleFile.files?.[0]));
ui.drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  chooseFile(e.dataTransfer?.files[0]);
});

/** Show a connection in the terminal and say how it ended. */
function show(id: string, where: Where, connection: ReturnType<GateServer['io']> | ReturnType<BrowserRuntime['connect']>): void {
  terminal.attach(id, where, connection).then((end) => {
    const s = (end as ServerConnectionEnd).status;
    if ((end as ServerConnectionEnd).error) terminal.note(`[${(end as ServerConnectionEnd).error}]`);
    else if (!end.joined) terminal.note('[the program has no connection to take]');
    else if (s) terminal.note(`[${statusText(s)}]`);
  }, failed);
}

ui.runBrowser.addEventListener('click', () => {
  if (!program) return;
  const p = program;
  const id = crypto.randomUUID();
  terminal.clear();
  say(`Preparing ${p.name} in the browser…`);
  runtime
    .launch(id, p.bytes, { function: ui.function.value || undefined, principal: identity?.principal })
    .then((info) => {
      say(`Instance ${id.slice(0, 8)} runs in this browser.`);
      list.set({ id, where: 'browser', module: info.module, status: apiStatus(info.status) });
      show(id, 'browser', runtime.connect(id));
    }, failed);
});

ui.runServer.addEventListener('click', () => {
  if (!program) return;
  const p = program;
  const fn = ui.function.value || undefined;
  terminal.clear();
  if (!identity) {
    // Anonymous: a call, which lasts as long as its connection.
    say(`Calling ${p.name} on the server (anonymous)…`);
    show(CALL, 'server', server.call(p.hash, p.bytes, fn));
    return;
  }
  say(`Uploading ${p.name} to the server…`);
  server
    .launch(p.hash, p.bytes, { function: fn, pin: !p.snapshot })
    .then((id) => {
      say(`Instance ${id.slice(0, 8)} runs on the server.`);
      show(id, 'server', server.io(id));
      return refresh();
    })
    .catch(failed);
});

// ---- input ----

ui.inputForm.addEventListener('submit', (e) => {
  e.preventDefault();
  terminal.send(new TextEncoder().encode(`${ui.input.value}\n`));
  ui.input.value = '';
});

ui.endInput.addEventListener('click', () => terminal.endInput());

// ---- instances ----

runtime.onEvent((e) => {
  if (e.event === 'status') {
    const row = list.get('browser', e.id);
    list.set({ id: e.id, where: 'browser', module: row?.module ?? '', status: apiStatus(e.status) });
  } else if (e.event === 'deleted') {
    list.remove('browser', e.id);
  } else if (e.event === 'debug' && terminal.instance === e.id && terminal.where === 'browser') {
    terminal.debug(new TextDecoder().decode(e.bytes));
  }
});

function download(name: string, bytes: Uint8Array): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/wasm' }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

async function act(action: InstanceAction, row: InstanceRow): Promise<void> {
  const { id, where } = row;
  const onServer = where === 'server';
  list.setBusy(id, true);
  try {
    switch (action) {
      case 'attach':
        show(id, where, onServer ? server.io(id) : runtime.connect(id));
        break;
      case 'suspend':
        if (onServer) await server.act(id, ['suspend', 'wait']);
        else await runtime.suspend(id);
        break;
      case 'resume': {
        const fn = row.status.state === 'HALTED' ? ui.function.value : undefined;
        if (onServer) await server.act(id, ['resume'], fn ? [['function', fn]] : []);
        else await runtime.resume(id, fn);
        if (terminal.instance === undefined || terminal.instance === id) show(id, where, onServer ? server.io(id) : runtime.connect(id));
        break;
      }
      case 'snapshot': {
        let bytes: Uint8Array;
        if (onServer) {
          const module = await server.snapshot(id);
          bytes = await server.download(module);
          await server.unpin(module);
        } else {
          bytes = await runtime.snapshot(id);
        }
        download(`${id.slice(0, 8)}.snap.wasm`, bytes);
        say(`Snapshot of ${id.slice(0, 8)} downloaded (${bytes.byteLength} bytes); choose it above to launch it.`);
        break;
      }
      case 'kill':
        if (onServer) await server.act(id, ['kill', 'wait']);
        else await runtime.kill(id);
        break;
      case 'delete':
        if (onServer) await server.act(id, ['delete']);
        else await runtime.delete(id);
        break;
      case 'migrate-to-browser':
      case 'migrate-to-server': {
        if (!identity) throw new Error('moving instances needs a key: generate or import one above');
        const sides = { server, runtime, terminal, principal: identity.principal };
        if (action === 'migrate-to-browser') {
          await migrateToBrowser(sides, id);
          say(`Instance ${id.slice(0, 8)} moved into this browser.`);
        } else {
          await migrateToServer(sides, id);
          say(`Instance ${id.slice(0, 8)} moved to the server.`);
        }
        break;
      }
    }
  } catch (error) {
    failed(error);
  } finally {
    list.setBusy(id, false);
    if (onServer || action.startsWith('migrate')) await refresh();
  }
}

// ---- the server's lists ----

let refreshing: Promise<void> | undefined;

/** Fetch the principal's instances and modules (one fetch at a time). */
function refresh(): Promise<void> {
  refreshing ??= (async () => {
    try {
      if (!identity) return;
      const [instances, modules] = await Promise.all([server.instances(), server.modules()]);
      list.setServer(instances.map((i) => ({ id: i.instance, where: 'server', module: i.module.replace(/^sha256\//, ''), status: i.status })));
      showModules(modules);
      ui.instancesNote.textContent = '';
    } catch (error) {
      ui.instancesNote.textContent = `The server's lists could not be fetched: ${(error as Error).message}`;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

function showModules(modules: { module: string; tags?: string[] }[]): void {
  ui.modulesNote.textContent = modules.length === 0 ? 'No modules pinned: programs run on the server are pinned here.' : '';
  ui.modules.replaceChildren(
    ...modules.map((m) => {
      const li = document.createElement('li');
      li.dataset.module = m.module;
      const code = document.createElement('code');
      code.textContent = m.module.slice(0, 16);
      code.title = m.module;
      const use = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Choose' });
      use.addEventListener('click', () => {
        server
          .download(m.module)
          .then((bytes) => choose(m.module.slice(0, 16), bytes))
          .catch(failed);
      });
      const unpin = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Unpin' });
      unpin.addEventListener('click', () => {
        server
          .unpin(m.module)
          .then(refresh)
          .catch(failed);
      });
      li.append(code, ` ${(m.tags ?? []).join(', ')} `, use, ' ', unpin);
      return li;
    }),
  );
}

setInterval(() => {
  if (identity && document.visibilityState === 'visible') void refresh();
}, POLL_MS);

// ---- start ----

worker.addEventListener('error', (e) => say(`The browser runtime failed: ${e.message || 'its worker did not start'}`, true));

if (!window.isSecureContext) {
  say(`This page needs a secure context for its keys and hashes: open it at http://127.0.0.1:${location.port || 80}/console/ or over https.`, true);
} else {
  loadIdentity().then((id) => {
    identity = id;
    showIdentity();
  }, failed);
}
