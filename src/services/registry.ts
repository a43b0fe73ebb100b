// Service registry: name → service definition, with an optional parent whose
// entries a child shadows (the host makes one child per instance run for
// per-run services such as origin). Availability is decided per instance
// context, at lookup time (services.md §2.4, §6.3).

import type { ServiceContext, ServiceFactory, ServiceRegistry } from '../runtime/service/service.ts';

/** Whether a service is discoverable in an instance's context. */
export type Availability = (context: ServiceContext) => boolean;

export interface ServiceDefinition {
  readonly factory: ServiceFactory;
  /** Absent: always available. */
  readonly available?: Availability;
}

/** Name and revision, as listed by catalog. */
export interface ServiceInfo {
  readonly name: string;
  readonly revision: string;
}

/** register() found the name taken. */
export class DuplicateServiceError extends Error {
  readonly serviceName: string;
  constructor(name: string) {
    super(`service ${JSON.stringify(name)} already registered`);
    this.name = 'DuplicateServiceError';
    this.serviceName = name;
  }
}

const MAX_STRING_BYTES = 127;
const NAME_CHARS = /^[\p{L}\p{N}\p{P}]+$/u;
const REVISION_CHARS = /^[\p{L}\p{N}\p{P}\p{M}\p{S}]+$/u;

const encoder = new TextEncoder();

function checkString(what: string, s: unknown, chars: RegExp): void {
  if (typeof s !== 'string' || s.length === 0) {
    throw new TypeError(`service ${what} string is empty`);
  }
  if (encoder.encode(s).length > MAX_STRING_BYTES) {
    throw new RangeError(`service ${what} string is too long: ${JSON.stringify(s)}`);
  }
  // The u flag makes a lone surrogate match nothing, so such strings fail too.
  if (!chars.test(s)) {
    throw new RangeError(`service ${what} string contains invalid characters: ${JSON.stringify(s)}`);
  }
}

/** Throws unless name and revision follow services.md §2.1. */
export function validateService(name: string, revision: string): void {
  const key = `${name}\n${revision}`;
  if (validated.has(key)) return;
  checkString('name', name, NAME_CHARS);
  checkString('revision', revision, REVISION_CHARS);
  if (validated.size < VALIDATED_KEPT) validated.add(key);
}

/** Names and revisions found valid: the per-run services (origin, catalog) are registered at every run. */
const validated = new Set<string>();
const VALIDATED_KEPT = 1024;

/** Orders strings by their UTF-8 bytes (code point order, unlike `<` on UTF-16). */
export function compareUtf8(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

export class Registry {
  readonly parent: Registry | null;
  readonly #entries = new Map<string, ServiceDefinition>();

  constructor(parent: Registry | null = null) {
    this.parent = parent;
  }

  /** Add a service; a name already registered in this registry is refused. Parents may be shadowed. */
  register(factory: ServiceFactory, available?: Availability): this {
    validateService(factory.name, factory.revision);
    if (this.#entries.has(factory.name)) {
      throw new DuplicateServiceError(factory.name);
    }
    this.#entries.set(factory.name, { factory, available });
    return this;
  }

  /** Add a service or replace the one of the same name in this registry. */
  registerOrReplace(factory: ServiceFactory, available?: Availability): this {
    validateService(factory.name, factory.revision);
    this.#entries.set(factory.name, { factory, available });
    return this;
  }

  /** A new registry whose entries shadow this one's; changes to it don't affect this one. */
  child(): Registry {
    return new Registry(this);
  }

  /** The effective definition of name (nearest registry first), available or not. */
  get(name: string): ServiceDefinition | undefined {
    return this.#entries.get(name) ?? this.parent?.get(name);
  }

  /**
   * The factory of name if it is available in context. A shadowing entry that
   * is unavailable hides the parent's entry.
   */
  lookup(name: string, context: ServiceContext): ServiceFactory | undefined {
    const d = this.get(name);
    if (d === undefined || (d.available !== undefined && !d.available(context))) {
      return undefined;
    }
    return d.factory;
  }

  /** Every effective definition, by name, without availability filtering. */
  definitions(): Map<string, ServiceDefinition> {
    const all = this.parent?.definitions() ?? new Map<string, ServiceDefinition>();
    for (const [name, d] of this.#entries) all.set(name, d);
    return all;
  }

  /** The services discoverable in context, sorted by name in UTF-8 byte order. */
  list(context: ServiceContext): ServiceInfo[] {
    const out: ServiceInfo[] = [];
    for (const [name, d] of this.definitions()) {
      if (d.available === undefined || d.available(context)) {
        out.push({ name, revision: d.factory.revision });
      }
    }
    return out.sort((a, b) => compareUtf8(a.name, b.name));
  }

  /** The runtime's view for one instance: lookups answer for that context only. */
  bind(context: ServiceContext): ServiceRegistry {
    return { lookup: (name) => this.lookup(name, context) };
  }
}
