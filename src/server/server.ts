// gate-server's public entry point: startServer() assembles the store, the
// executor, auth and policy, listens (TCP, TLS or a Unix socket), resumes
// the instances that were running at the last shutdown, and returns a
// handle whose close() suspends and checkpoints running instances.

import { chmodSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Verifier } from './api/auth.ts';
import { defaultConfig, type Config } from './config/config.ts';
import type { ShardLink, ServerParts } from './api/context.ts';
import { InProcessExecutor, inProcessOptions, type Executor } from './exec/executor.ts';
import { goJSON } from './http/messages.ts';
import { identityToken, readPrivateKey } from './api/identity.ts';
import { Instances, type InstanceDirectory } from './api/instances.ts';
import { Logger } from './obs/log.ts';
import { Metrics } from './obs/metrics.ts';
import { Modules, type UnpinnedCache } from './api/modules.ts';
import { NewcomerLimiter, type Admission } from './api/newcomers.ts';
import type { Quota } from './api/quota.ts';
import { acquirePidFile, releasePidFile } from './store/pid-lock.ts';
import { createPolicy } from './api/policy.ts';
import { createHandler } from './http/router.ts';
import { HttpSource, IpfsSource, type Source } from './api/sources.ts';
import { Store } from './store/store.ts';
import { Cluster } from './api/cluster.ts';
import { PeerBridge } from './api/peer-bridge.ts';
import type { Inventory } from './store/inventory.ts';
import type { Membership } from './store/pg-membership.ts';
import { SqliteInventory } from './store/sqlite-inventory.ts';
import { createUpgradeHandler } from './http/websocket.ts';
import { startServices, type RunningServices } from '../services/node/registry.ts';

export type Listen = { host: string; port: number } | { path: string };

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Every key optional, at any depth. */
export type ConfigInput = DeepPartial<Config>;

export interface ServerOptions {
  listen: Listen;
  /** Inventory database, module files and the server's uuid live here. */
  dataDir: string;
  /** Access policy, limits, TLS, sources, ... (see docs/server.md); defaults fill the rest. */
  config?: ConfigInput | Config;
  /**
   * Where instances run (default: this thread, with the services of
   * config.service). The caller closes an executor it passes in, and gives
   * it the services (the commands build them from config.service).
   */
  executor?: Executor;
  /** Accept unsigned `alg: none` tokens as principal `local` (Gate's local daemon mode). */
  localUnsignedTokens?: boolean;
  /** Structured log destination (default: JSON lines on stderr at config.log.level). */
  log?: Logger;
}

export interface RunningServer {
  /** http(s)://127.0.0.1:PORT for TCP, or the socket path. */
  readonly url: string;
  /** Stop serving; running persistent instances are suspended and checkpointed to resume at the next start. */
  close(): Promise<void>;
}

export function mergeConfig(input: ConfigInput | Config | undefined): Config {
  const config = defaultConfig();
  const merge = (target: Record<string, unknown>, source: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(source)) {
      if (v === undefined) continue;
      const t = target[k];
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof t === 'object' && t !== null && !Array.isArray(t)) {
        merge(t as Record<string, unknown>, v as Record<string, unknown>);
      } else {
        target[k] = v;
      }
    }
  };
  if (input) merge(config as unknown as Record<string, unknown>, input as Record<string, unknown>);
  return config;
}

function audiences(config: Config, listen: Listen, port: number, scheme: string): string[] {
  if (config.http.audience.length > 0) return config.http.audience;
  const out: string[] = [];
  if (config.http.authority) out.push(`${scheme}://${config.http.authority}/gate-0/`);
  if ('path' in listen) {
    out.push('http://localhost/gate-0/', 'http://unix/gate-0/');
  } else {
    const hosts = new Set([listen.host === '' || listen.host === '0.0.0.0' || listen.host === '::' ? 'localhost' : listen.host, 'localhost', '127.0.0.1']);
    for (const h of hosts) {
      const host = h.includes(':') ? `[${h}]` : h;
      out.push(`${scheme}://${host}:${port}/gate-0/`);
      if ((scheme === 'http' && port === 80) || (scheme === 'https' && port === 443)) out.push(`${scheme}://${host}/gate-0/`);
    }
  }
  return out;
}

/** The origins (scheme://host[:port]) of the server's audiences. */
function ownOrigins(audiences: readonly string[]): string[] {
  return [...new Set(audiences.map((a) => new URL(a).origin))];
}

function createSources(config: Config): Map<string, Source> {
  const sources = new Map<string, Source>();
  if (config.source.ipfs.addr) sources.set('ipfs', new IpfsSource(config.source.ipfs.addr));
  for (const s of config.source.http) {
    if (!/^[A-Za-z0-9._-]+$/.test(s.name) || s.name === 'sha256' || sources.has(s.name)) {
      throw new Error(`invalid or duplicate module source name: ${JSON.stringify(s.name)}`);
    }
    if (!/^https?:\/\//.test(s.addr)) throw new Error(`module source ${s.name}: addr must be an http(s) URL`);
    sources.set(s.name, new HttpSource(s.name, s.addr));
  }
  return sources;
}

/** Modules of a cluster stored this long ago and referred to by nothing are collected when a server starts. */
const UNPINNED_SHARED_MS = 3600_000;

/** Another process serves the data directory (its pid file is `server.pid` there). */
export class DataDirInUse extends Error {
  readonly holder: number;
  constructor(dataDir: string, holder: number) {
    super(`data directory ${dataDir} is in use by process ${holder} (another gate-server or gate-daemon); stop it or choose another --data-dir`);
    this.name = 'DataDirInUse';
    this.holder = holder;
  }
}

/**
 * Serve the data directory, which one process at a time may do: a second
 * server on the same directory would run the same instances twice.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const lockFile = path.join(options.dataDir, 'server.pid');
  const holder = acquirePidFile(lockFile);
  if (holder !== undefined) throw new DataDirInUse(options.dataDir, holder);
  try {
    const running = await serve(options);
    return { url: running.url, close: () => running.close().finally(() => releasePidFile(lockFile)) };
  } catch (error) {
    releasePidFile(lockFile);
    throw error;
  }
}

async function serve(options: ServerOptions): Promise<RunningServer> {
  const config = mergeConfig(options.config);
  const local = options.localUnsignedTokens ?? config.access.local;
  const log = options.log ?? new Logger(config.log.level, { format: config.log.format });
  const store = new Store(options.dataDir);
  const uuid = store.serverUuid(config.server.uuid);
  let membership: Membership | undefined;
  let peers: PeerBridge | undefined;
  try {
    if (config.database.url) {
      // PostgreSQL's client loads only for a cluster (~40 ms of every start otherwise).
      const { Membership } = await import('./store/pg-membership.ts');
      membership = await Membership.join({ url: config.database.url, id: uuid, lease: config.database.lease });
      // The peer service's hubs of all servers meet through the database.
      if (config.service.peer.enabled) peers = await PeerBridge.open(config.service.peer.channel, config.database.url, uuid, (m) => log.warn(m));
    }
  } catch (error) {
    await membership?.close();
    store.close();
    throw error;
  }
  // The data dir keeps the nonces and the server's uuid in any case.
  const inventory: Inventory = membership?.inventory ?? new SqliteInventory(store);
  const ownExecutor = !options.executor;
  let services: RunningServices | undefined;
  let executor = options.executor;
  let cluster: Cluster | undefined;
  const frontend = createFrontend(config);
  try {
    // Without an executor from the caller, instances run here with the configured services.
    services = ownExecutor ? await startServices(config.service, { log: (message) => log.warn(message) }) : undefined;
    executor ??= new InProcessExecutor(inProcessOptions(config, options.dataDir, services?.registry));
    const own = executor;
    // Other servers of a cluster may be about to pin what they stored lately.
    const collected = await inventory.collectUnreferenced(membership ? Date.now() - UNPINNED_SHARED_MS : Infinity);
    if (collected > 0) log.info('unpinned modules of an earlier run removed', { modules: collected });
    const port = await listen(frontend.server, options.listen);
    const parts = assembleParts({
      config,
      store,
      inventory,
      serverId: uuid,
      executor,
      log,
      local,
      listen: options.listen,
      port,
      // Live ones are bounded per process (runtime.maxinstances: its memory pool); hibernated ones need no memory.
      maxInstances: { value: config.server.maxinstances, key: `server.maxinstances = ${config.server.maxinstances}` },
      unpinned: { bytes: config.server.unpinnedmodules * 1024 * 1024 },
    });
    cluster = membership ? new Cluster(membership, parts.instances, log) : undefined;
    await parts.instances.load((principal) => parts.policy.limits({ principal: { id: principal, key: new Uint8Array(32) }, scope: [] }));
    if (cluster) await cluster.start();
    frontend.open(parts);
    const url = 'path' in options.listen ? options.listen.path : `${frontend.scheme}://${hostForUrl(options.listen.host)}:${port}`;
    log.info('server started', { url, uuid, datadir: options.dataDir, audience: parts.verifier.audiences, policy: config.access.policy, local, cluster: !!cluster });
    const joined = cluster;
    return serving(parts, frontend, url, async () => {
      await peers?.close();
      await joined?.close();
      if (ownExecutor) await own.close();
      services?.close();
      store.close();
      if ('path' in options.listen) removeSocket(options.listen.path);
    });
  } catch (error) {
    // Never leave a server listening that cannot serve.
    if (frontend.server.listening) frontend.server.close();
    frontend.server.closeAllConnections();
    await peers?.close();
    if (cluster) await cluster.close();
    else await membership?.close();
    if (ownExecutor) await executor?.close();
    services?.close();
    store.close();
    if ('path' in options.listen) removeSocket(options.listen.path);
    throw error;
  }
}

/** What assembleParts() needs besides the configuration: where the server's state and instances are, and its limits. */
export interface PartsOptions {
  config: Config;
  /** The data directory's store: nonces, and the server's uuid. */
  store: Store;
  /** Modules, pins and instance records. */
  inventory: Inventory;
  /** The owner named in the instance records this server writes. */
  serverId: string;
  executor: Executor;
  log: Logger;
  /** Accept unsigned local tokens. */
  local: boolean;
  listen: Listen;
  /** The port listened on (the audiences name it). */
  port: number;
  /** Instances in the server at once, and the setting named when it is full. */
  maxInstances: { value: number; key: string };
  /** The cache of modules nothing refers to: its size here, or another process's job. */
  unpinned: UnpinnedCache;
  metrics?: Metrics;
  /** A shard's grant of the limits (default: all of them). */
  quota?: Quota;
  /** A shard's view of the other shards' instances. */
  directory?: InstanceDirectory;
  /** Who admits new principals (default: a limiter in this process). */
  newcomers?: Admission;
  shards?: ShardLink;
}

/** The API core of a server: auth, policy, modules, instances, the API document. */
export function assembleParts(o: PartsOptions): ServerParts {
  const { config, store, inventory, executor, log } = o;
  if (o.local && config.http.origins.includes('*')) config.http.origins = ['null'];
  const metrics = o.metrics ?? new Metrics();
  const modules = new Modules(inventory, executor, o.unpinned);
  if ('bytes' in o.unpinned) {
    metrics.addGauges(() => [
      { name: 'gate_unpinned_module_bytes', help: 'Bytes of stored modules nothing refers to (server.unpinnedmodules).', values: [[{}, modules.unpinnedSize]] },
    ]);
  }
  const instances = new Instances({
    inventory,
    serverId: o.serverId,
    modules,
    executor,
    log,
    metrics,
    maxAnonymous: config.access.anonymousprocs,
    anonymousTimeLimit: config.access.anonymoustimelimit,
    maxInstances: o.maxInstances,
    quota: o.quota,
    directory: o.directory,
  });
  const scheme = config.http.tls.certfile ? 'https' : 'http';
  const uuid = store.serverUuid(config.server.uuid);
  const auds = audiences(config, o.listen, o.port, scheme);
  // Browsers' pages may use the API only from the server's own origins unless others are configured.
  if (config.http.origins.filter((origin) => origin !== '').length === 0) config.http.origins = ownOrigins(auds);
  const identityKey = config.server.identityfile ? readPrivateKey(config.server.identityfile) : undefined;
  const jwt = identityToken(uuid, auds[0], identityKey);
  return {
    config,
    inventory,
    modules,
    instances,
    executor,
    verifier: new Verifier({ audiences: auds, nonces: config.access.nonces && !o.local ? store : undefined, local: o.local }),
    policy: createPolicy(config),
    log,
    metrics,
    sources: createSources(config),
    newcomers: o.newcomers ?? new NewcomerLimiter(config.access.newprincipals, 'access.newprincipals', (id) => store.knowsPrincipal(id)),
    apiInfo: { uuid, plain: goJSON({ uuid, jwt }), features: goJSON({ uuid, jwt, features: {} }) },
    shards: o.shards,
  };
}

/** The HTTP side of a server: requests are answered 503 until open() gives it the API core. */
export interface Frontend {
  readonly server: http.Server;
  readonly scheme: 'http' | 'https';
  open(parts: ServerParts): void;
  /** Close the websockets (the server's connections are closed by its owner). */
  closeUpgrades(): void;
  /** Serve `other` too (a shard's socket for requests passed on by the others). */
  attach(other: net.Server): void;
}

export function createFrontend(config: Config): Frontend {
  const tls = config.http.tls.certfile
    ? { cert: readFileSync(config.http.tls.certfile), key: readFileSync(config.http.tls.keyfile || config.http.tls.certfile) }
    : undefined;
  const server = tls ? https.createServer(tls) : http.createServer();
  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  let upgrades: ReturnType<typeof createUpgradeHandler> | undefined;
  const wire = (s: http.Server) => {
    // Calls and io stream for as long as the program runs: no overall request timeout.
    s.requestTimeout = 0;
    s.headersTimeout = 60_000;
    // Until the recorded instances are loaded, requests are answered 503 (they are not left hanging).
    s.on('request', (req, res) => {
      if (handler) handler(req, res);
      else starting(res);
    });
    s.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (upgrades) upgrades.upgrade(req, socket, head);
      else socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n');
    });
    s.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
  };
  wire(server);
  return {
    server,
    scheme: tls ? 'https' : 'http',
    open(parts) {
      upgrades = createUpgradeHandler(parts);
      handler = createHandler(parts);
    },
    closeUpgrades() {
      upgrades?.close();
    },
    attach(other) {
      wire(other as http.Server);
    },
  };
}

/** A starting server's answer. */
function starting(res: http.ServerResponse): void {
  const body = 'server is starting\n';
  res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1' });
  res.end(body);
}

/** The handle of a started server: periodic checkpoints, and close() (then `release` frees the rest). */
export function serving(parts: ServerParts, frontend: Frontend, url: string, release: () => Promise<void>): RunningServer {
  const { config, instances, log } = parts;
  let checkpoints: ReturnType<typeof setInterval> | undefined;
  if (config.runtime.checkpoint > 0) {
    checkpoints = setInterval(() => {
      instances.checkpointRunning().catch((error: unknown) => log.error('checkpoint failed', { error: String(error) }));
    }, config.runtime.checkpoint * 1000);
    checkpoints.unref();
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        if (checkpoints) clearInterval(checkpoints);
        const stopped = new Promise<void>((resolve) => frontend.server.close(() => resolve()));
        await instances.shutdown();
        frontend.closeUpgrades();
        frontend.server.closeAllConnections();
        await stopped;
        await release();
        log.info('server stopped', { url });
      })();
      return closing;
    },
  };
}

function hostForUrl(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Listen; a Unix socket is created with mode 0600 (a stale one left by a crash is replaced); `reusePort`: others may listen on the same port (SO_REUSEPORT). */
export async function listen(server: net.Server, where: Listen, reusePort = false): Promise<number> {
  if ('path' in where) {
    if (await staleSocket(where.path)) removeSocket(where.path);
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(where.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    chmodSync(where.path, 0o600);
    return 0;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: where.port, host: where.host, reusePort }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

/** A socket file nobody answers on. */
function staleSocket(file: string): Promise<boolean> {
  try {
    if (!lstatSync(file).isSocket()) return Promise.resolve(false);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.once('error', () => resolve(true));
  });
}

export function removeSocket(file: string): void {
  try {
    if (lstatSync(file).isSocket()) unlinkSync(file);
  } catch {
    // gone already
  }
}
