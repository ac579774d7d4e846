// A fixed-size ring: keeps the last `capacity` items pushed, overwriting the oldest.

export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  /** Where the next item goes. */
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`a ring's capacity is a whole number ≥ 1, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity).fill(undefined);
  }

  /** Items held (at most `capacity`). */
  get size(): number {
    return this.count;
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** The items held, the last pushed first. */
  newestFirst(): T[] {
    const out: T[] = [];
    let i = this.next;
    for (let n = 0; n < this.count; n++) {
      i = i === 0 ? this.capacity - 1 : i - 1;
      out.push(this.items[i] as T);
    }
    return out;
  }

  clear(): void {
    this.items.fill(undefined);
    this.next = 0;
    this.count = 0;
  }
}
