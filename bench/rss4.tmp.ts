import { childProcesses, GateServer, residentBytes } from '../test/hostile/harness.ts';
import { Principal, sha256, wasm } from '../test/server/helpers.ts';
import { readFileSync } from 'node:fs';
const server = await GateServer.start({ config: { 'runtime.workers': 2, 'runtime.checkpoint': 0, 'log.level': 'warn', 'principal.maxinstances': 100000, 'principal.maxprocs': 100000, 'principal.totalmemorysize': 2 ** 50, 'runtime.hibernate': 1, 'access.newprincipals': 0 } });
const pid = server.process.pid!;
const workers = () => childProcesses(pid).filter((c) => readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('gate-instances'));
const show = async (label: string) => {
  const m = (await server.client().request('/metrics')).text.split('\n').filter((l) => /^(nodejs_heap_used|nodejs_external|gate_hib)/.test(l)).join(' ');
  console.log(label, 'server', (residentBytes(pid) / 2 ** 20).toFixed(0), 'workers', workers().map((c) => (residentBytes(c) / 2 ** 20).toFixed(0)).join(' '), m);
};
const echo = wasm('examples/echo.wasm');
const cs = Array.from({ length: 100 }, () => server.client(new Principal()));
await Promise.all(cs.map((c) => c.upload(echo)));
await new Promise((r) => setTimeout(r, 2000));
await show('start');
const N = Number(process.env.N ?? 10000);
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => { while (next < N) { const i = next++; await cs[i % 100].post(`/gate-0/module/sha256/${sha256(echo)}?action=launch&function=echo`); } }));
for (let t = 0; t < 20; t++) { await new Promise((r) => setTimeout(r, 1000)); }
await show(`after ${N}`);
await new Promise((r) => setTimeout(r, 10000));
await show(`10 s later`);
await server.stop();
