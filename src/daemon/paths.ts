// Where the per-user daemon lives: its socket and pid file in the user's
// runtime directory ($XDG_RUNTIME_DIR/gate, else /tmp/gate-$UID), its state
// (modules, instances) in $XDG_STATE_HOME/gate/daemon like the server's.
// GATE_DAEMON_DIR overrides the runtime directory (tests, several daemons).

import os from 'node:os';
import path from 'node:path';

export interface DaemonPaths {
  /** Directory of the socket, pid file and log (mode 0700). */
  runtimeDir: string;
  socket: string;
  pidFile: string;
  logFile: string;
  /** Persistent state: modules, instances, configuration-free defaults. */
  dataDir: string;
}

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

export function daemonPaths(env: NodeJS.ProcessEnv = process.env): DaemonPaths {
  const runtimeDir = env.GATE_DAEMON_DIR || (env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'gate') : path.join(os.tmpdir(), `gate-${uid()}`));
  const stateHome = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return {
    runtimeDir,
    socket: path.join(runtimeDir, 'daemon.sock'),
    pidFile: path.join(runtimeDir, 'daemon.pid'),
    logFile: path.join(runtimeDir, 'daemon.log'),
    dataDir: env.GATE_DAEMON_DATA || path.join(stateHome, 'gate', 'daemon'),
  };
}
