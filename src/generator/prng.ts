/**
 * A small, fast, seedable PRNG (sfc32, Chris Doty-Humphrey's "small fast chaotic" generator, 128-bit state)
 * seeded through splitmix32. `crypto.randomUUID` and `Math.random` cannot be seeded, and "same seed, same
 * bytes" is a promise the generator makes, so every random choice of the generator goes through this.
 * Not for secrets.
 */
import { randomInt } from 'node:crypto';

/** splitmix32 step: spreads a seed over the state so that seeds 1 and 2 give unrelated streams. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` may be any finite number; integers up to 2^53 keep all their bits. */
  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.a = splitmix32(lo);
    this.b = splitmix32(this.a ^ hi);
    this.c = splitmix32(this.b ^ 0x6a09e667);
    this.d = splitmix32(this.c ^ 0xbb67ae85);
    // The first outputs of sfc32 are weak; the reference implementation discards 12.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform unsigned 32-bit integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n) for 0 < n <= 2^32. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
}

/** A seed for runs without `--seed`: from the OS, so two processes started together still differ. */
export function randomSeed(): number {
  return randomInt(0, 0xffff_ffff);
}
