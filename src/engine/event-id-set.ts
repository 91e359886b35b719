/**
 * The keys seen so far in one batch, for in-batch deduplication within a fixed memory budget.
 *
 * A `Set<string>` of 1,000,000 ids costs ~100 MB, and ids sliced out of a line keep the whole line alive
 * in V8. Canonical UUIDs (what the generator writes) are stored instead as 128 bits in an open-addressing
 * table (16 MB per million at load factor 0.5); any other id falls back to a Set of flattened strings.
 *
 * The budget bounds the table and the strings together. Once it is spent, a key not held is let through
 * as `unchecked`: this set cannot say whether it occurred earlier in the batch. A repeat of a key held is
 * still a duplicate here; a repeat of an unchecked key is found by PostgreSQL, exactly (the sink: the
 * unique index stops the fast path, and the staging path ranks the batch's rows by line order). So
 * memory stays flat however many rows a batch has, and the first occurrence still wins.
 */
// Lower case only: PostgreSQL compares ids case-sensitively, so "ABC…" and "abc…" are different events.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SLOT_BYTES = 16;
/** A flat one-byte string's header plus its entry in a Set's hash table, roughly (V8, 64-bit). */
const STRING_OVERHEAD_BYTES = 40;

export class EventIdSet {
  private slots: Uint32Array; // slots of 4 words; all-zero = empty
  private used = 0;
  private zeroSeen = false; // the all-zero UUID cannot be stored as a slot value
  private readonly other = new Set<string>();
  private otherBytes = 0;
  private peak = 0;
  /** Keys let through without a check because the budget was spent. */
  unchecked = 0;

  /**
   * @param budgetBytes the most memory the table and the other strings hold at once, also while the table
   *   grows (then the old and the new table are both alive); the table doubles from 1,024 slots.
   */
  constructor(private readonly budgetBytes = Infinity) {
    let slots = 1024;
    while (slots > 8 && slots * SLOT_BYTES > budgetBytes) slots /= 2;
    this.slots = new Uint32Array(slots * 4);
    this.peak = this.bytes;
  }

  /** Keys held. */
  get size(): number {
    return this.used + (this.zeroSeen ? 1 : 0) + this.other.size;
  }

  /** Bytes held now: the table and the other strings. */
  get bytes(): number {
    return this.slots.byteLength + this.otherBytes;
  }

  /** The most bytes held at once, counting both tables while the table grows. */
  get peakBytes(): number {
    return this.peak;
  }

  /** Adds the key; returns false when it is a repeat of a key held (a duplicate). */
  add(id: string): boolean {
    if (id.length !== 36 || !UUID.test(id)) return this.addOther(id);
    const hex = id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23) + id.slice(24);
    const a = parseInt(hex.slice(0, 8), 16) >>> 0;
    const b = parseInt(hex.slice(8, 16), 16) >>> 0;
    const c = parseInt(hex.slice(16, 24), 16) >>> 0;
    const d = parseInt(hex.slice(24, 32), 16) >>> 0;
    if ((a | b | c | d) === 0) {
      if (this.zeroSeen) return false;
      this.zeroSeen = true;
      return true;
    }
    if ((this.used + 1) * 2 > this.slots.length / 4 && !this.grow()) {
      if (this.find(a, b, c, d)) return false;
      this.unchecked++;
      return true;
    }
    return this.insert(a, b, c, d);
  }

  private addOther(id: string): boolean {
    if (this.other.has(id)) return false;
    const cost = id.length * 2 + STRING_OVERHEAD_BYTES; // two bytes a character at worst
    if (this.bytes + cost > this.budgetBytes) {
      this.unchecked++;
      return true;
    }
    this.other.add(Buffer.from(id, 'utf8').toString('utf8')); // a flat copy, not a slice of the line
    this.otherBytes += cost;
    this.peak = Math.max(this.peak, this.bytes);
    return true;
  }

  private home(a: number, b: number, c: number, d: number): number {
    return (Math.imul(a ^ d, 0x9e3779b1) ^ b ^ Math.imul(c, 0x85ebca6b)) & (this.slots.length / 4 - 1);
  }

  /** True when the key is in the table (the table has room, so the probe ends at an empty slot). */
  private find(a: number, b: number, c: number, d: number): boolean {
    const s = this.slots;
    const mask = s.length / 4 - 1;
    for (let i = this.home(a, b, c, d); ; i = (i + 1) & mask) {
      const o = i * 4;
      if ((s[o]! | s[o + 1]! | s[o + 2]! | s[o + 3]!) === 0) return false;
      if (s[o] === a && s[o + 1] === b && s[o + 2] === c && s[o + 3] === d) return true;
    }
  }

  private insert(a: number, b: number, c: number, d: number): boolean {
    const s = this.slots;
    const mask = s.length / 4 - 1;
    for (let i = this.home(a, b, c, d); ; i = (i + 1) & mask) {
      const o = i * 4;
      if ((s[o]! | s[o + 1]! | s[o + 2]! | s[o + 3]!) === 0) {
        s[o] = a;
        s[o + 1] = b;
        s[o + 2] = c;
        s[o + 3] = d;
        this.used++;
        return true;
      }
      if (s[o] === a && s[o + 1] === b && s[o + 2] === c && s[o + 3] === d) return false;
    }
  }

  /** Doubles the table if the budget allows the old and the new one at once; false when it does not. */
  private grow(): boolean {
    const old = this.slots;
    if (old.byteLength * 3 + this.otherBytes > this.budgetBytes) return false;
    this.slots = new Uint32Array(old.length * 2);
    this.peak = Math.max(this.peak, old.byteLength + this.bytes);
    this.used = 0;
    for (let o = 0; o < old.length; o += 4) {
      if ((old[o]! | old[o + 1]! | old[o + 2]! | old[o + 3]!) !== 0) this.insert(old[o]!, old[o + 1]!, old[o + 2]!, old[o + 3]!);
    }
    return true;
  }
}
