/**
 * The few PNG chunk operations the diagram needs. resvg writes no `pHYs` chunk, so a viewer or printer
 * would assume 72 or 96 DPI and print the A4 page at four times its size; `withPhys` records the DPI.
 */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let crcTable: Uint32Array | undefined;

/** CRC-32 as PNG defines it (ISO 3309); zlib.crc32 only exists from Node 20.15 on. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface PngChunk {
  type: string;
  data: Buffer;
}

export function readChunks(png: Buffer): PngChunk[] {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file (bad signature)');
  const chunks: PngChunk[] = [];
  let off = 8;
  while (off + 12 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    chunks.push({ type, data: png.subarray(off + 8, off + 8 + len) });
    off += 12 + len;
    if (type === 'IEND') break;
  }
  return chunks;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Pixels per metre for a DPI, rounded as PNG stores it: 300 DPI -> 11811. */
export function pixelsPerMetre(dpi: number): number {
  return Math.round(dpi / 0.0254);
}

/** The PNG with a pHYs chunk (replacing any) right after IHDR, where the format requires it. */
export function withPhys(png: Buffer, dpi: number): Buffer {
  const ppm = pixelsPerMetre(dpi);
  const data = Buffer.alloc(9);
  data.writeUInt32BE(ppm, 0);
  data.writeUInt32BE(ppm, 4);
  data.writeUInt8(1, 8); // unit: metre
  const parts: Buffer[] = [SIGNATURE];
  for (const c of readChunks(png)) {
    if (c.type === 'pHYs') continue;
    parts.push(chunk(c.type, c.data));
    if (c.type === 'IHDR') parts.push(chunk('pHYs', data));
  }
  return Buffer.concat(parts);
}

/** Width, height and pHYs of a PNG, for tests and checks. */
export function pngInfo(png: Buffer): { width: number; height: number; ppmX?: number; ppmY?: number; unit?: number } {
  const chunks = readChunks(png);
  const ihdr = chunks.find((c) => c.type === 'IHDR');
  if (!ihdr) throw new Error('PNG without IHDR');
  const phys = chunks.find((c) => c.type === 'pHYs');
  return {
    width: ihdr.data.readUInt32BE(0),
    height: ihdr.data.readUInt32BE(4),
    ...(phys ? { ppmX: phys.data.readUInt32BE(0), ppmY: phys.data.readUInt32BE(4), unit: phys.data.readUInt8(8) } : {}),
  };
}
