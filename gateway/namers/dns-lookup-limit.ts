// Caps the DNS look-ups in flight: past the cap, a look-up waits in a queue until one ends.
// First look-ups (a binding waits on them) go ahead of refreshes (their name still has
// an answer to serve meanwhile), so a wave of refreshes never delays a cold name.

/** A first-in first-out queue that takes from the front without moving the rest. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Drop the taken slots once they are half the array.
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class LookupLimit {
  private running = 0;
  private readonly first = new Fifo<() => void>();
  private readonly refreshes = new Fifo<() => void>();

  constructor(readonly max: number) {}

  /** Look-ups in flight now. */
  get inFlight(): number {
    return this.running;
  }

  /** Look-ups waiting for a free slot. */
  get queued(): number {
    return this.first.size + this.refreshes.size;
  }

  /** Runs `lookup` when a slot is free; `refresh` puts it behind every first look-up. */
  run<T>(lookup: () => Promise<T>, refresh: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        let looking: Promise<T>;
        try {
          looking = lookup();
        } catch (e) {
          looking = Promise.reject(e);
        }
        looking.then(resolve, reject).finally(() => {
          this.running--;
          this.next();
        });
      };
      if (this.running < this.max) start();
      else (refresh ? this.refreshes : this.first).push(start);
    });
  }

  private next(): void {
    const start = this.first.shift() ?? this.refreshes.shift();
    start?.();
  }
}
