/**
 * The product catalogue: 200 products, each with a fixed id, name, category and price.
 *
 * It is derived from a constant seed, never from the run's `--seed`, so `P00042` is the same product with
 * the same price in every run, every process and every test: a product id always travels with the same
 * name, category and price, which is what a real shop's events look like and what the dashboard's
 * revenue-by-category figures rely on. A few names contain a comma or a double quote on purpose, so the
 * engines' CSV readers are exercised on quoted fields by ordinary valid rows.
 */
import { PRODUCT_CATEGORIES, type ProductCategory } from '../contract/event.js';
import { csvField } from './csv.js';
import { Prng } from './prng.js';

export interface Product {
  /** `P00001` ... `P00200`. */
  readonly id: string;
  readonly name: string;
  readonly category: ProductCategory;
  /** Price with exactly two decimals, as written to the CSV (e.g. `19.99`). */
  readonly price: string;
  readonly priceCents: number;
}

export const CATALOG_SIZE = 200;
const PER_CATEGORY = CATALOG_SIZE / PRODUCT_CATEGORIES.length;
const CATALOG_SEED = 0x5eedca7a;

/** [item, lowest price, highest price] in dollars; a product is `${brand} ${item}`. */
type Item = readonly [string, number, number];
interface CategoryWords {
  readonly brands: readonly string[];
  readonly items: readonly Item[];
}

const WORDS: Record<ProductCategory, CategoryWords> = {
  Electronics: {
    brands: ['Nova', 'Voltix', 'Aurora', 'Zenith', 'Kestrel'],
    items: [
      ['Wireless Earbuds', 29, 199],
      ['Bluetooth Speaker', 24, 249],
      ['27" 4K Monitor', 229, 699],
      ['Mechanical Keyboard', 49, 199],
      ['Smartphone', 199, 1199],
      ['14-inch Laptop', 499, 1899],
      ['Noise-Cancelling Headphones', 79, 399],
      ['USB-C Charger, 65W', 19, 69],
      ['10-inch Tablet', 149, 799],
    ],
  },
  Clothing: {
    brands: ['Northline', 'Urban Thread', 'Coastal', 'Alder & Co.', 'Maven'],
    items: [
      ['Cotton T-Shirt', 9, 39],
      ['Slim Fit Jeans', 29, 119],
      ['Hooded Sweatshirt', 24, 89],
      ['Rain Jacket', 49, 199],
      ['Wool Socks, Pack of 3', 9, 29],
      ['Running Shorts', 14, 49],
      ['Linen Shirt', 24, 89],
      ['Puffer Vest', 39, 149],
    ],
  },
  'Home & Kitchen': {
    brands: ['Hearth', 'Oakmere', 'Casa Bella', 'Copperline', 'Everyday'],
    items: [
      ['Cast Iron Skillet, 12"', 24, 89],
      ["Chef's Knife", 19, 179],
      ['Coffee Maker', 29, 249],
      ['Bath Towel Set', 19, 79],
      ['Non-Stick Cookware Set', 59, 299],
      ['Air Fryer', 49, 199],
      ['Table Lamp', 19, 129],
      ['Memory Foam Pillow', 19, 79],
    ],
  },
  Books: {
    brands: [
      'The Silent Harbor',
      'A Winter Garden',
      'The Last Algorithm',
      'Beyond the Mountain',
      'The Hidden Library',
      'Under the Lighthouse',
      'Notes on Data Streams',
      'The Copper Key',
      'Small Gods of the City',
      'Learning SQL Slowly',
    ],
    items: [
      ['(Paperback)', 7, 19],
      ['(Hardcover)', 16, 39],
      ['Illustrated Edition', 19, 49],
    ],
  },
  'Sports & Outdoors': {
    brands: ['Summit', 'Trailhead', 'Apex', 'Riverbend', 'Peak Motion'],
    items: [
      ['Yoga Mat', 19, 89],
      ['Trekking Poles', 29, 149],
      ['2-Person Tent', 79, 399],
      ['Bike Helmet', 39, 179],
      ['Insulated Water Bottle', 14, 49],
      ['Adjustable Dumbbells', 99, 449],
      ['Running Shoes', 59, 189],
      ['Sleeping Bag', 49, 249],
    ],
  },
  'Toys & Games': {
    brands: ['Brightbox', 'Wonderlab', 'Tiny Titans', 'Playfold', 'Galaxy Kids'],
    items: [
      ['Building Blocks Set', 19, 129],
      ['Strategy Board Game', 24, 69],
      ['1000-Piece Puzzle', 12, 34],
      ['Remote Control Car', 29, 149],
      ['Plush Bear', 9, 39],
      ['Science Kit', 19, 79],
      ['Card Game', 7, 24],
      ['Wooden Train Set', 29, 119],
    ],
  },
  Beauty: {
    brands: ['Lumiere', 'Velvet Bloom', 'Purely', 'Aurelia', 'Glow Theory'],
    items: [
      ['Hydrating Face Cream', 12, 79],
      ['Vitamin C Serum', 14, 89],
      ['Matte Lipstick', 7, 39],
      ['Shampoo, 500 ml', 6, 29],
      ['Eau de Parfum', 39, 149],
      ['Hair Dryer', 29, 199],
      ['Sheet Masks, Pack of 10', 9, 29],
      ['Nail Polish', 4, 19],
    ],
  },
  Automotive: {
    brands: ['RoadPro', 'Torque', 'Ironclad', 'MotorMate', 'Voyager'],
    items: [
      ['Car Phone Mount', 9, 39],
      ['Dash Camera', 49, 249],
      ['Portable Jump Starter', 59, 199],
      ['All-Weather Floor Mats', 29, 129],
      ['Tire Inflator', 29, 99],
      ['Synthetic Motor Oil, 5 qt', 24, 49],
      ['LED Headlight Bulbs', 19, 89],
      ['Roof Cargo Box', 199, 899],
    ],
  },
};

function shuffle<T>(rng: Prng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
}

/** A shop price: log-uniform in the item's range, ending in .99 (most), .49 or .00. */
function priceCents(rng: Prng, low: number, high: number): number {
  const dollars = Math.max(1, Math.floor(Math.exp(Math.log(low) + rng.float() * (Math.log(high) - Math.log(low)))));
  const r = rng.float();
  const cents = r < 0.65 ? 99 : r < 0.85 ? 49 : 0;
  return dollars * 100 + cents;
}

export function formatCents(cents: number): string {
  const c = cents % 100;
  return `${(cents - c) / 100}.${c < 10 ? '0' : ''}${c}`;
}

function buildCatalog(): Product[] {
  const rng = new Prng(CATALOG_SEED);
  const drafts: Omit<Product, 'id'>[] = [];
  for (const category of PRODUCT_CATEGORIES) {
    const { brands, items } = WORDS[category];
    const combos: [string, Item][] = [];
    for (const brand of brands) for (const item of items) combos.push([brand, item]);
    if (combos.length < PER_CATEGORY) throw new Error(`catalogue: too few names for ${category}`);
    for (const [brand, [item, low, high]] of shuffle(rng, combos).slice(0, PER_CATEGORY)) {
      const cents = priceCents(rng, low, high);
      const name = category === 'Books' && !item.startsWith('(') ? `${brand}, ${item}` : `${brand} ${item}`;
      drafts.push({ name, category, price: formatCents(cents), priceCents: cents });
    }
  }
  // Ids in shuffled order, so neighbouring ids (and the popularity ranking below) mix categories.
  return shuffle(rng, drafts).map((d, i) => Object.freeze({ id: `P${String(i + 1).padStart(5, '0')}`, ...d }));
}

export const CATALOG: readonly Product[] = Object.freeze(buildCatalog());

const BY_ID = new Map(CATALOG.map((p) => [p.id, p]));

export function productById(id: string): Product | undefined {
  return BY_ID.get(id);
}

/** Catalogue indexes of each category's products (for "browsing within a category"). */
export const PRODUCTS_BY_CATEGORY: ReadonlyMap<ProductCategory, readonly number[]> = new Map(
  PRODUCT_CATEGORIES.map((c) => [c, CATALOG.flatMap((p, i) => (p.category === c ? [i] : []))]),
);

/** `id,name,category,price,` with CSV quoting applied once, so the hot loop only concatenates. */
export const CSV_PRODUCT_PREFIX: readonly string[] = CATALOG.map((p) => `${p.id},${csvField(p.name)},${csvField(p.category)},${p.price},`);

/**
 * Popularity: a Zipf-like weight 1/(rank+1)^0.8 over catalogue order, flattened into a 4096-entry table so
 * a weighted pick is one random number and one array read.
 */
export const POPULARITY_TABLE: Uint16Array = (() => {
  const weights = CATALOG.map((_, i) => 1 / Math.pow(i + 1, 0.8));
  const total = weights.reduce((a, b) => a + b, 0);
  const table = new Uint16Array(4096);
  let acc = 0;
  let slot = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]! / total;
    const end = i === weights.length - 1 ? table.length : Math.round(acc * table.length);
    while (slot < end) table[slot++] = i;
  }
  return table;
})();
