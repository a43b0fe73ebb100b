// The packet channel between a program and its services (abi.md §3): the
// host→program byte queue, reassembly and validation of the program's
// packets, service discovery, and routing to service instances.

import { AbiViolation } from './errors.ts';
import {
  CODE_SERVICES,
  DATA_HEADER_SIZE,
  Domain,
  HEADER_SIZE,
  MAX_PACKET_SIZE,
  MAX_SERVICES,
  SERVICE_STATE_AVAIL,
  align,
  makePacket,
  stampPacket,
} from '../packet/packet.ts';
import type { ServiceContext, ServiceFactory, ServiceInstance, ServiceRegistry } from '../service/service.ts';

/**
 * While this many bytes wait for the program, the channel takes no more
 * packets from it (abi.md §3.6): a program that never reads cannot make the
 * host buffer without bound.
 */
export const QUEUE_LIMIT = 65536;

/** What a run leaves behind for the next one (Gate's snapshot Buffers). */
export interface ChannelState {
  /** One entry per discovered name, in code order. */
  services: { name: string; buffer: Uint8Array }[];
  /** Bytes for the program that it has not read yet (wire form, padded). */
  input: Uint8Array;
  /** Bytes from the program not yet handled (a partial packet). */
  output: Uint8Array;
}

interface Service {
  name: string;
  factory: ServiceFactory | undefined;
  instance: ServiceInstance | undefined;
  /** Saved state of a service that is not available in this run, kept for the next snapshot. */
  kept: Uint8Array | undefined;
}

export interface ChannelHooks {
  /** Something was queued for the program. */
  readable(): void;
  /** A service ended the run. */
  abort(error: Error): void;
}

const decoder = new TextDecoder();

/** How long the end of a run waits for services that save their state elsewhere. */
export const SHUTDOWN_GRACE_MS = 10_000;

export class PacketChannel {
  private readonly registry: ServiceRegistry;
  private readonly context: ServiceContext;
  private readonly hooks: ChannelHooks;
  private readonly services: Service[] = [];
  private queue: Uint8Array[] = [];
  private queueHead = 0; // bytes of queue[0] already read
  private queued = 0;
  // Reassembly of the packet the program is writing (grown to the packet's size: most are small).
  private partial = new Uint8Array(HEADER_SIZE);
  private partialLength = 0;
  private closed = false;

  constructor(registry: ServiceRegistry, context: ServiceContext, hooks: ChannelHooks) {
    this.registry = registry;
    this.context = context;
    this.hooks = hooks;
  }

  /** Bytes waiting for the program. */
  get pending(): number {
    return this.queued;
  }

  readable(): boolean {
    return this.queued > 0;
  }

  writable(): boolean {
    return this.queued < QUEUE_LIMIT;
  }

  /** Copy queued bytes for the program into dst. */
  read(dst: Uint8Array): number {
    let n = 0;
    while (n < dst.byteLength && this.queue.length > 0) {
      const chunk = this.queue[0];
      const take = Math.min(chunk.byteLength - this.queueHead, dst.byteLength - n);
      dst.set(chunk.subarray(this.queueHead, this.queueHead + take), n);
      n += take;
      this.queueHead += take;
      if (this.queueHead === chunk.byteLength) {
        this.queue.shift();
        this.queueHead = 0;
      }
    }
    this.queued -= n;
    return n;
  }

  /**
   * Take bytes the program writes. Complete packets are validated and handed
   * to services at once. Returns how many bytes were taken: fewer than given
   * once the queue for the program is full. Throws AbiViolation.
   */
  write(src: Uint8Array): number {
    let taken = 0;
    while (taken < src.byteLength && this.writable()) {
      // Up to the header first (its size is checked at once), then up to the padded end.
      const target = this.partialLength < HEADER_SIZE ? HEADER_SIZE : align(this.size());
      if (target > this.partial.byteLength) this.growPartial(target);
      const n = Math.min(target - this.partialLength, src.byteLength - taken);
      this.partial.set(src.subarray(taken, taken + n), this.partialLength);
      this.partialLength += n;
      taken += n;
      if (this.partialLength === HEADER_SIZE) this.checkSize();
      if (this.partialLength >= HEADER_SIZE && this.partialLength === align(this.size())) {
        // Handed over whole (services may keep it); the next packet gets a buffer of its own.
        const packet = this.partial.subarray(0, this.size());
        this.partial = new Uint8Array(HEADER_SIZE);
        this.partialLength = 0;
        this.receive(packet);
      }
    }
    return taken;
  }

  /** Queue a packet for the program: stamp size and code, pad to alignment. */
  send(code: number, packet: Uint8Array): void {
    if (this.closed) return;
    if (packet.byteLength < HEADER_SIZE || packet.byteLength > MAX_PACKET_SIZE) {
      this.hooks.abort(new Error(`service sent a packet of invalid size ${packet.byteLength}`));
      return;
    }
    const padded = new Uint8Array(align(packet.byteLength));
    padded.set(packet);
    stampPacket(padded.subarray(0, packet.byteLength), code);
    this.queue.push(padded);
    this.queued += padded.byteLength;
    this.hooks.readable();
  }

  private size(): number {
    return new DataView(this.partial.buffer).getUint32(0, true);
  }

  private growPartial(size: number): void {
    const bigger = new Uint8Array(size);
    bigger.set(this.partial.subarray(0, this.partialLength));
    this.partial = bigger;
  }

  private checkSize(): void {
    const size = this.size();
    if (size < HEADER_SIZE || size > MAX_PACKET_SIZE) {
      throw new AbiViolation(`runtime: invalid op packet size: ${size}`);
    }
  }

  private receive(p: Uint8Array): void {
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const code = v.getInt16(4, true);
    const domain = p[6] & 0xf;
    if (code < CODE_SERVICES) throw new AbiViolation(`invalid code in incoming packet: ${code}`);
    if (code === CODE_SERVICES) {
      this.discover(p, domain);
      return;
    }
    if (code >= this.services.length) throw new AbiViolation(`invalid service code in packet: ${code}`);
    if (domain > Domain.DATA) throw new AbiViolation(`invalid domain in packet: ${domain}`);
    if (domain === Domain.DATA && p.byteLength < DATA_HEADER_SIZE) {
      throw new AbiViolation(`data packet is too short: ${p.byteLength} bytes`);
    }
    const service = this.services[code];
    if (!service.factory) return; // unavailable: discarded
    if (!service.factory.streams && (domain === Domain.FLOW || domain === Domain.DATA)) {
      throw new AbiViolation(`service ${service.name} does not support streams`);
    }
    const instance = service.instance ?? this.createInstance(code, null);
    const reply = instance.handle(p);
    if (reply) this.send(code, reply);
  }

  private createInstance(code: number, saved: Uint8Array | null): ServiceInstance {
    const service = this.services[code];
    const instance = service.factory!.create(this.context, { maxSendSize: MAX_PACKET_SIZE, code }, saved);
    service.instance = instance;
    instance.start(
      (packet) => this.send(code, packet),
      (error) => this.hooks.abort(error),
    );
    return instance;
  }

  private discover(p: Uint8Array, domain: number): void {
    if (domain !== Domain.CALL) throw new AbiViolation(`service discovery packet has wrong domain: ${domain}`);
    if (p.byteLength < 10) throw new AbiViolation(`service discovery packet is too short: ${p.byteLength} bytes`);
    const count = p[8] | (p[9] << 8);
    const room = MAX_SERVICES - this.services.length;
    let off = 10;
    for (let i = 0; i < Math.min(count, room); i++) {
      if (off >= p.byteLength) throw new AbiViolation('name data is truncated in service discovery packet');
      const length = p[off++];
      if (length === 0 || length > 127) {
        throw new AbiViolation('service name length in discovery packet is out of bounds');
      }
      if (off + length > p.byteLength) throw new AbiViolation('name data is truncated in service discovery packet');
      const name = decoder.decode(p.subarray(off, off + length));
      off += length;
      const factory = this.registry.lookup(name);
      if (factory && this.services.some((s) => s.factory === factory)) throw new AbiViolation('duplicate service');
      this.services.push({ name, factory, instance: undefined, kept: undefined });
    }
    this.send(CODE_SERVICES, this.statePacket(Domain.CALL));
  }

  private statePacket(domain: number): Uint8Array {
    const n = this.services.length;
    const p = makePacket(10 + n, CODE_SERVICES, domain);
    p[8] = n & 0xff;
    p[9] = n >> 8;
    this.services.forEach((s, i) => {
      p[10 + i] = s.factory ? SERVICE_STATE_AVAIL : 0;
    });
    return p;
  }

  /**
   * Restore the state a previous run left: queued input first, then the
   * service states notification, then the restored services start (and may
   * send).
   */
  restore(state: ChannelState, options: { announce?: boolean } = {}): void {
    if (state.input.byteLength > 0) {
      this.queue.push(state.input.slice());
      this.queued += state.input.byteLength;
    }
    if (state.output.byteLength > align(MAX_PACKET_SIZE)) throw new Error('saved partial packet is too large');
    if (state.output.byteLength > this.partial.byteLength) this.growPartial(state.output.byteLength);
    this.partial.set(state.output);
    this.partialLength = state.output.byteLength;
    if (this.partialLength >= HEADER_SIZE) this.checkSize();
    for (const s of state.services) {
      const factory = this.registry.lookup(s.name);
      this.services.push({ name: s.name, factory, instance: undefined, kept: factory ? undefined : s.buffer });
    }
    // The program learns of its services' states after a resume; a hibernated run that goes on saw nothing stop (announce false).
    if (this.services.length > 0 && options.announce !== false) this.send(CODE_SERVICES, this.statePacket(Domain.INFO));
    state.services.forEach((s, code) => {
      if (this.services[code].factory && s.buffer.byteLength > 0) this.createInstance(code, s.buffer);
    });
  }

  /**
   * The state close() would leave, taken while the run goes on (for
   * hibernation; ServiceInstance.hibernate), and whether every service is
   * idle. Null when a service cannot be saved while it runs.
   */
  hibernate(): { state: ChannelState; idle: boolean } | null {
    let idle = true;
    const services: ChannelState['services'] = [];
    for (const s of this.services) {
      if (!s.instance) {
        services.push({ name: s.name, buffer: s.kept ?? new Uint8Array(0) });
        continue;
      }
      const saved = s.instance.hibernate?.();
      if (!saved) return null;
      if (!saved.idle) idle = false;
      services.push({ name: s.name, buffer: saved.state });
    }
    const input = new Uint8Array(this.queued);
    let n = 0;
    this.queue.forEach((chunk, i) => {
      const part = i === 0 ? chunk.subarray(this.queueHead) : chunk;
      input.set(part, n);
      n += part.byteLength;
    });
    return { state: { services, input, output: this.partial.slice(0, this.partialLength) }, idle };
  }

  /**
   * Before close(): let services whose state lives elsewhere collect it
   * (ServiceInstance.prepareShutdown). null when no service needs to; a
   * service that does not finish within the grace period is not waited for.
   */
  prepareShutdown(suspend: boolean, graceMs = SHUTDOWN_GRACE_MS): Promise<void> | null {
    const waits: Promise<unknown>[] = [];
    for (const s of this.services) {
      const p = s.instance?.prepareShutdown?.(suspend);
      if (p) waits.push(p.catch(() => undefined));
    }
    if (waits.length === 0) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    return Promise.race([Promise.all(waits).then(() => undefined), grace]).finally(() => clearTimeout(timer));
  }

  /** End of run: stop services and collect what the next run needs. */
  close(): ChannelState {
    this.closed = true;
    const services = this.services.map((s) => ({
      name: s.name,
      buffer: s.instance ? s.instance.shutdown() : (s.kept ?? new Uint8Array(0)),
    }));
    const input = new Uint8Array(this.queued);
    this.read(input);
    return { services, input, output: this.partial.slice(0, this.partialLength) };
  }
}
