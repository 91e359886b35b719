/**
 * The set of event ids seen in one batch, for in-batch deduplication within the memory budget.
 *
 * A `Set<string>` of 1,000,000 ids costs ~100 MB, and ids sliced out of a line keep the whole line alive
 * in V8. Canonical UUIDs (what the generator writes) are stored instead as 128 bits in an open-addressing
 * table (16 MB per million at load factor 0.5); any other id falls back to a Set of flattened strings.
 */
// Lower case only: PostgreSQL compares ids case-sensitively, so "ABC…" and "abc…" are different events.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class EventIdSet {
  private slots = new Uint32Array(4 * 1024); // 1024 slots of 4 words; all-zero = empty
  private used = 0;
  private zeroSeen = false; // the all-zero UUID cannot be stored as a slot value
  private readonly other = new Set<string>();

  get size(): number {
    return this.used + (this.zeroSeen ? 1 : 0) + this.other.size;
  }

  /** Adds the id; returns false when it was already present. */
  add(id: string): boolean {
    if (id.length !== 36 || !UUID.test(id)) {
      if (this.other.has(id)) return false;
      this.other.add(Buffer.from(id, 'utf8').toString('utf8')); // a flat copy, not a slice of the line
      return true;
    }
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
    if ((this.used + 1) * 2 > this.slots.length / 4) this.grow();
    return this.insert(a, b, c, d);
  }

  private insert(a: number, b: number, c: number, d: number): boolean {
    const s = this.slots;
    const mask = s.length / 4 - 1;
    let i = (Math.imul(a ^ d, 0x9e3779b1) ^ b ^ Math.imul(c, 0x85ebca6b)) & mask;
    for (;;) {
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
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    this.used = 0;
    for (let o = 0; o < old.length; o += 4) {
      if ((old[o]! | old[o + 1]! | old[o + 2]! | old[o + 3]!) !== 0) this.insert(old[o]!, old[o + 1]!, old[o + 2]!, old[o + 3]!);
    }
  }
}
