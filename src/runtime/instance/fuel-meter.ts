// Fuel and time accounting of one instance, and the decision taken at every
// tick: go on with a new grant, or stop the slice here. The program's code
// counts fuel down in a global; the meter grants it in portions and moves
// what was spent to the total.

import type { Limit } from './status.ts';

/** Fuel granted per tick: about a millisecond of work, so that the slice clock is read often enough. */
export const FUEL_GRANT = 1_000_000;

/** A resource limit ended the run. */
export class LimitExceeded extends Error {
  readonly limit: Limit;
  constructor(limit: Limit, message: string) {
    super(message);
    this.limit = limit;
  }
}

export interface FuelMeterOptions {
  /** Stop after this much fuel in all runs. */
  fuelLimit?: number;
  /** Stop after this many milliseconds of running in all runs. */
  timeLimit?: number;
  fuelUsed?: number;
  timeUsed?: number;
}

export class FuelMeter {
  readonly fuelLimit: number;
  readonly timeLimit: number;
  fuelUsed: number;
  timeUsed: number;
  /** Suspend at the first tick after this much fuel (deterministic suspension points). */
  suspendAt = Infinity;
  /** The program's fuel global, once instantiated. */
  private global: WebAssembly.Global | undefined;
  private granted = 0;
  /** While a stack is being rewound the global holds no fuel: nothing to absorb. */
  private counting = false;

  constructor(options: FuelMeterOptions) {
    this.fuelLimit = options.fuelLimit ?? Infinity;
    this.timeLimit = options.timeLimit ?? Infinity;
    this.fuelUsed = options.fuelUsed ?? 0;
    this.timeUsed = options.timeUsed ?? 0;
  }

  bind(global: WebAssembly.Global | undefined): void {
    this.global = global;
  }

  /** Fuel used in all, including what the running code has spent of its grant. */
  get consumed(): number {
    return this.fuelUsed + (this.counting && this.global ? this.granted - (this.global.value as number) : 0);
  }

  /** Give the program a new portion (never past the limit or a requested suspension point); returns it. */
  grant(max = FUEL_GRANT): number {
    const grant = Math.max(0, Math.min(max, this.fuelLimit - this.fuelUsed, this.suspendAt - this.fuelUsed));
    this.granted = grant;
    this.counting = true;
    if (this.global) this.global.value = grant;
    return grant;
  }

  /** Move fuel spent since the last grant to the total. */
  absorb(): void {
    if (!this.global) return;
    if (this.counting) this.fuelUsed += this.granted - (this.global.value as number);
    this.granted = 0;
    this.counting = false;
    this.global.value = 0;
  }

  /** The global holds something other than fuel (a rewind marker) until the next grant. */
  suspendCounting(value: number): void {
    this.counting = false;
    this.granted = 0;
    if (this.global) this.global.value = value;
  }

  /** Charge work the program does without checks of its own (its worst case); throws past the fuel limit. */
  charge(cost: number): void {
    if (this.fuelUsed + cost > this.fuelLimit) {
      this.fuelUsed = this.fuelLimit;
      throw new LimitExceeded('fuel', `fuel limit exceeded: ${this.fuelLimit}`);
    }
    this.fuelUsed += cost;
  }

  /** After absorbing at a tick: throw when a limit is reached; true when a requested suspension point is reached. */
  checkLimits(runningMs: number): boolean {
    if (this.fuelUsed >= this.fuelLimit) throw new LimitExceeded('fuel', `fuel limit exceeded: ${this.fuelLimit}`);
    if (this.timeUsed + runningMs >= this.timeLimit) {
      throw new LimitExceeded('time', `time limit exceeded: ${this.timeLimit} ms`);
    }
    if (this.fuelUsed >= this.suspendAt) {
      this.suspendAt = Infinity;
      return true;
    }
    return false;
  }
}
