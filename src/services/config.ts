// Building the server-wide service registry from configuration
// (services.md §6): which services exist on this server, with what
// settings, and who may discover each. The keys mirror Gate's
// `service.<name>.*` configuration; availability keys are ours.
//
//   [service.random]
//   bitsperminute = 7680          # ≤ 0: unavailable (Gate)
//   [service.localhost]
//   addr = "http://127.0.0.1:8080" # empty: not registered (Gate)
//   [service.peer]
//   enabled = true                 # peer is off by default (not in Gate)
//   principals = […]               # who may use it (as below)
//   [service.identity]
//   principals = ["ed25519:…"]     # only these principals may discover it
//   denyprincipals = ["…"]          # these may not
//   anonymous = false               # programs without a principal may not
//
// Every service takes `enabled`, `principals`, `denyprincipals` and
// `anonymous`. The catalog lists exactly what an instance may discover,
// because availability is decided per instance context at lookup time.

import type { ServiceContext, ServiceFactory } from '../runtime/service/service.ts';
import { identityService } from './identity.ts';
import { createLocalhostService, type LocalhostTransport } from './localhost.ts';
import { DEFAULT_BITS_PER_MINUTE, createRandomService } from './random.ts';
import { Registry, type Availability } from './registry.ts';
import { PeerHub, createPeerService, type PeerNetwork } from './peer.ts';
import { scopeService } from './scope.ts';

/** Who may discover a service (all optional). */
export interface ServiceAccess {
  /** false: the service is not registered at all. */
  enabled?: boolean;
  /** When non-empty, only these principal ids may discover the service. */
  principals?: string[];
  /** These principal ids may not discover the service. */
  denyprincipals?: string[];
  /** false: programs without a principal may not discover the service (default true). */
  anonymous?: boolean;
}

export interface ServicesConfig {
  identity?: ServiceAccess;
  scope?: ServiceAccess;
  random?: ServiceAccess & { bitsperminute?: number };
  localhost?: ServiceAccess & {
    /** `http://host[:port]`, `https://…` or `unix:///path`; empty: not registered. */
    addr?: string;
    /** Requests in progress at once per instance (default 10, as Gate). */
    maxconcurrent?: number;
    /** Unanswered calls per instance before 503 replies (default 64, at most 255). */
    maxoutstanding?: number;
    /** Request timeout in milliseconds (default 30000). */
    timeout?: number;
  };
  /** The peer service (not in Gate): off unless `enabled = true`. */
  peer?: ServiceAccess;
  /** Other named services (e.g. external gRPC ones), by name: access only. */
  access?: Record<string, ServiceAccess>;
}

/** Things the registry needs that do not come from configuration text. */
export interface BuildOptions {
  /** Hub of the peer service: instances must share one to see each other (default: one per registry). */
  peerHub?: PeerNetwork;
  /** HTTP transport of the localhost service (default: fetch). The Node server passes nodeHttpTransport. */
  localhostTransport?: LocalhostTransport;
  /**
   * More services to register (external gRPC services, peer), each subject
   * to `access[name]` as well as its own availability test.
   */
  extra?: readonly (ServiceFactory | { factory: ServiceFactory; available?: Availability })[];
}

/** A configuration value of the wrong type or range. */
export class ServiceConfigError extends Error {
  readonly code = 'ERR_SERVICE_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ServiceConfigError';
  }
}

function stringList(where: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new ServiceConfigError(`service.${where} must be a list of strings`);
  }
  return v;
}

function boolOr(where: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ServiceConfigError(`service.${where} must be true or false`);
  return v;
}

function numberOr(where: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ServiceConfigError(`service.${where} must be a number`);
  return v;
}

/** The availability test for one service's access settings; undefined when everyone may. */
export function accessRule(name: string, access: ServiceAccess | undefined): Availability | undefined {
  const allow = new Set(stringList(`${name}.principals`, access?.principals));
  const deny = new Set(stringList(`${name}.denyprincipals`, access?.denyprincipals));
  const anonymous = boolOr(`${name}.anonymous`, access?.anonymous, true);
  if (allow.size === 0 && deny.size === 0 && anonymous) return undefined;
  return (context: ServiceContext) => {
    const p = context.principal;
    if (p === undefined || p === '') return anonymous && allow.size === 0;
    if (deny.has(p)) return false;
    return allow.size === 0 || allow.has(p);
  };
}

function both(a: Availability | undefined, b: Availability | undefined): Availability | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return (context) => a(context) && b(context);
}

/** Whether context passes the rule (tests and callers that check up front). */
function passes(rule: Availability | undefined, principal: string | undefined): boolean {
  if (rule === undefined) return true;
  return rule({ instance: '', scope: [], ...(principal !== undefined ? { principal } : {}) });
}

/**
 * The server-wide registry for config. With principal, only the services
 * that principal may discover are registered (a per-principal view);
 * without it, every enabled service is registered with its access rule, so
 * one registry serves all principals and each instance's catalog shows what
 * that instance may use. Origin and catalog are added per run by the host
 * (runRegistry) and are always available.
 */
export function buildRegistry(config: ServicesConfig = {}, principal?: string, options: BuildOptions = {}): Registry {
  const registry = new Registry();
  const add = (factory: ServiceFactory, access: ServiceAccess | undefined, own?: Availability): void => {
    if (!boolOr(`${factory.name}.enabled`, access?.enabled, true)) return;
    const configured = accessRule(factory.name, access);
    const rule = both(configured, own);
    if (principal !== undefined) {
      // A per-principal view: what depends only on the principal is decided now.
      if (!passes(configured, principal)) return;
      registry.register(factory, own);
      return;
    }
    registry.register(factory, rule);
  };

  add(identityService, config.identity);
  add(scopeService, config.scope);

  const bpm = numberOr('random.bitsperminute', config.random?.bitsperminute, DEFAULT_BITS_PER_MINUTE);
  if (bpm > 0) add(createRandomService({ bitsPerMinute: bpm }), config.random);

  const addr = config.localhost?.addr ?? '';
  if (typeof addr !== 'string') throw new ServiceConfigError('service.localhost.addr must be a string');
  if (addr !== '') {
    let factory: ServiceFactory;
    try {
      factory = createLocalhostService({
        addr,
        transport: options.localhostTransport,
        maxConcurrent: numberOr('localhost.maxconcurrent', config.localhost?.maxconcurrent, 10),
        maxOutstanding: numberOr('localhost.maxoutstanding', config.localhost?.maxoutstanding, 64),
        timeout: numberOr('localhost.timeout', config.localhost?.timeout, 30_000),
      });
    } catch (e) {
      throw new ServiceConfigError(e instanceof Error ? e.message : String(e));
    }
    add(factory, config.localhost);
  }

  if (config.peer !== undefined && boolOr('peer.enabled', config.peer.enabled, false)) {
    add(createPeerService(options.peerHub ?? new PeerHub()), config.peer);
  }

  for (const entry of options.extra ?? []) {
    const { factory, available } = 'factory' in entry ? entry : { factory: entry, available: undefined };
    if (registry.get(factory.name) !== undefined) continue; // built-ins shadow external services (Gate)
    add(factory, config.access?.[factory.name], available);
  }
  return registry;
}
