// A Map that keeps only its most recently used entries: reading or writing
// an entry makes it the newest, and past the capacity (a number of entries,
// and optionally a total weight such as bytes) the oldest go.

export class RecentMap<K, V> {
  readonly capacity: number;
  private readonly map = new Map<K, V>();
  private readonly weigh: ((value: V) => number) | undefined;
  private readonly maxWeight: number;
  private weight = 0;

  constructor(capacity: number, weight?: { of: (value: V) => number; max: number }) {
    this.capacity = capacity;
    this.weigh = weight?.of;
    this.maxWeight = weight?.max ?? Infinity;
  }

  get size(): number {
    return this.map.size;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    this.map.set(key, value);
    if (this.weigh) this.weight += this.weigh(value);
    // The newest entry stays, whatever it weighs.
    while (this.map.size > 1 && (this.map.size > this.capacity || this.weight > this.maxWeight)) this.delete(this.map.keys().next().value!);
  }

  delete(key: K): boolean {
    const value = this.map.get(key);
    if (value === undefined) return false;
    if (this.weigh) this.weight -= this.weigh(value);
    return this.map.delete(key);
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}
