// Starts a command's TypeScript entry module on a Node.js that can run it
// (22.18 or newer: type stripping). This file is plain JavaScript so that
// an older Node gets here: it then runs the command again on the Node that
// `npm install` put in node_modules (the node-<os>-<cpu> package), or says
// in one line which version is needed. Compiled code is cached on disk
// (module.enableCompileCache), so later starts skip most parsing.

import { existsSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NEED = [22, 18];
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function recent(version) {
  const [major, minor] = version.split('.').map(Number);
  return major > NEED[0] || (major === NEED[0] && minor >= NEED[1]);
}

/** Run the entry module (a path relative to the repository) as the program. */
export async function launch(entry, name) {
  if (recent(process.versions.node)) {
    delete process.env.GATE_RELAUNCHED;
    module.enableCompileCache?.();
    await import(path.join(root, entry));
    return;
  }
  const bundled = path.join(root, 'node_modules', `node-${process.platform}-${process.arch}`, 'bin', 'node');
  if (!existsSync(bundled) || process.env.GATE_RELAUNCHED) {
    process.stderr.write(`${name}: needs Node.js ${NEED.join('.')} or newer, this is ${process.version}: run "npm install" in ${root} (it brings one) or install a newer Node.js\n`);
    process.exit(1);
  }
  // Run again on the bundled Node; this process only relays signals and the exit status.
  // (child_process loads only here: a few ms of every start on a recent Node otherwise.)
  const { spawn } = await import('node:child_process');
  const child = spawn(bundled, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GATE_RELAUNCHED: '1' },
  });
  // Ctrl-C and Ctrl-\ reach the child from the terminal (its process group); others are passed on.
  for (const signal of ['SIGINT', 'SIGQUIT']) process.on(signal, () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
