// The instances table: the principal's instances on the server (polled) and
// the instances of this browser (from the worker's events), one row each,
// updated in place, with the actions each one's state allows.

import type { ApiStatus } from './server-api.ts';

import type { Where } from './terminal.ts';

export type { Where };

export interface InstanceRow {
  id: string;
  where: Where;
  module: string;
  status: ApiStatus;
}

export const ACTIONS = ['attach', 'suspend', 'resume', 'snapshot', 'kill', 'delete', 'migrate-to-browser', 'migrate-to-server'] as const;
export type InstanceAction = (typeof ACTIONS)[number];

const LABELS: Record<InstanceAction, string> = {
  attach: 'Show',
  suspend: 'Suspend',
  resume: 'Resume',
  snapshot: 'Snapshot',
  kill: 'Kill',
  delete: 'Delete',
  'migrate-to-browser': 'Move to browser',
  'migrate-to-server': 'Move to server',
};

const TITLES: Partial<Record<InstanceAction, string>> = {
  attach: 'show its output here and send it input',
  resume: 'continue a suspended instance, or run the function above in a halted one',
  snapshot: 'download its snapshot (a running one is paused for it and goes on)',
  'migrate-to-browser': 'move the live instance from the server into this browser',
  'migrate-to-server': 'move the live instance from this browser to the server',
};

const keyOf = (where: Where, id: string): string => `${where}:${id}`;

export function statusText(s: ApiStatus): string {
  let text = s.state;
  if (s.cause) text += ` ${s.cause}`;
  if (s.result) text += ` (result ${s.result})`;
  if (s.error) text += `: ${s.error}`;
  return text;
}

/** Which actions a row offers now. */
function allowed(row: InstanceRow, action: InstanceAction, principal: boolean): boolean {
  const state = row.status.state;
  switch (action) {
    case 'attach':
    case 'suspend':
      return state === 'RUNNING';
    case 'resume':
      return state === 'SUSPENDED' || state === 'HALTED';
    case 'snapshot':
      return true;
    case 'kill':
      return state === 'RUNNING' || state === 'SUSPENDED' || state === 'HALTED';
    case 'delete':
      return state !== 'RUNNING';
    case 'migrate-to-browser':
      return row.where === 'server';
    case 'migrate-to-server':
      return row.where === 'browser' && principal;
  }
}

export class InstanceList {
  private readonly body: HTMLElement;
  private readonly onAction: (action: InstanceAction, row: InstanceRow) => void;
  private readonly rows = new Map<string, InstanceRow>();
  private readonly elements = new Map<string, HTMLTableRowElement>();
  /** Rows with an action in progress (their buttons are disabled). */
  private readonly busy = new Set<string>();
  private shown: string | undefined;
  private principal = false;

  constructor(body: HTMLElement, onAction: (action: InstanceAction, row: InstanceRow) => void) {
    this.body = body;
    this.onAction = onAction;
  }

  get(where: Where, id: string): InstanceRow | undefined {
    return this.rows.get(keyOf(where, id));
  }

  /** Replace the server's rows with what the server listed. */
  setServer(rows: readonly InstanceRow[]): void {
    for (const [key, row] of this.rows) if (row.where === 'server') this.rows.delete(key);
    for (const row of rows) this.rows.set(keyOf('server', row.id), row);
    this.render();
  }

  set(row: InstanceRow): void {
    this.rows.set(keyOf(row.where, row.id), row);
    this.render();
  }

  remove(where: Where, id: string): void {
    this.rows.delete(keyOf(where, id));
    this.render();
  }

  setBusy(id: string, busy: boolean): void {
    if (busy) this.busy.add(id);
    else this.busy.delete(id);
    this.render();
  }

  setShown(id: string | undefined): void {
    this.shown = id;
    this.render();
  }

  setPrincipal(principal: boolean): void {
    this.principal = principal;
    this.render();
  }

  private render(): void {
    for (const [key, tr] of this.elements) {
      if (!this.rows.has(key)) {
        tr.remove();
        this.elements.delete(key);
      }
    }
    for (const [key, row] of this.rows) {
      let tr = this.elements.get(key);
      if (!tr) {
        tr = this.create(key, row);
        this.elements.set(key, tr);
        this.body.append(tr);
      }
      this.update(tr, row);
    }
  }

  private create(key: string, { id, where }: InstanceRow): HTMLTableRowElement {
    const tr = document.createElement('tr');
    tr.dataset.instance = id;
    tr.dataset.where = where;
    const cell = (testid: string) => {
      const td = document.createElement('td');
      td.dataset.testid = testid;
      tr.append(td);
      return td;
    };
    const idCell = cell('instance-id');
    const code = document.createElement('code');
    code.textContent = id.slice(0, 8);
    code.title = id;
    idCell.append(code);
    cell('where');
    cell('module');
    cell('status');
    const actions = cell('actions');
    actions.className = 'actions';
    for (const action of ACTIONS) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.testid = action;
      b.dataset.action = action;
      b.textContent = LABELS[action];
      if (TITLES[action]) b.title = TITLES[action]!;
      b.addEventListener('click', () => {
        const row = this.rows.get(key);
        if (row) this.onAction(action, row);
      });
      actions.append(b);
    }
    return tr;
  }

  private update(tr: HTMLTableRowElement, row: InstanceRow): void {
    tr.dataset.state = row.status.state;
    tr.classList.toggle('shown', this.shown === row.id);
    const [, where, module, status, actions] = tr.children as unknown as HTMLElement[];
    where.textContent = row.where;
    module.textContent = row.module.slice(0, 12);
    module.title = row.module;
    status.textContent = statusText(row.status);
    const busy = this.busy.has(row.id);
    for (const b of actions.querySelectorAll<HTMLButtonElement>('button')) {
      const action = b.dataset.action as InstanceAction;
      const relevant = action !== 'migrate-to-browser' && action !== 'migrate-to-server' ? true : action === (row.where === 'server' ? 'migrate-to-browser' : 'migrate-to-server');
      b.hidden = !relevant;
      b.disabled = busy || !allowed(row, action, this.principal);
    }
  }
}
