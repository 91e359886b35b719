/** `ecomstream diagram`: regenerate the architecture and use-case diagrams in docs/diagrams/. */
import path from 'node:path';
import type { Command } from 'commander';

interface DiagramOptions {
  out: string;
  check?: boolean;
}

export function register(program: Command): void {
  program
    .command('diagram')
    .description(
      'write the architecture diagram (DOT, SVG, A4 300-DPI PNG, draw.io) and the use-case diagrams, ' +
        'generated from docker-compose.yml, src/config.ts, postgres/migrations/ and bench/results/ (latest.json, engines.json)',
    )
    .option('--out <dir>', 'output folder', 'docs/diagrams')
    .option('--check', 'write nothing; fail if the files in --out differ from a fresh generation')
    .action(async (opts: DiagramOptions) => {
      // Loaded here, not at the top: Graphviz (WebAssembly) and resvg are only needed by this command.
      const { generateDiagrams, staleDiagrams, writeDiagrams, MIN_PRINT_SCALE } = await import('../diagram/index.js');
      const root = process.cwd();
      const outDir = path.resolve(root, opts.out);
      const set = await generateDiagrams({ root });
      const rel = (f: string) => path.relative(root, f) || f;

      if (opts.check) {
        const stale = staleDiagrams(outDir, set.files);
        for (const f of stale) process.stderr.write(`stale: ${rel(f)}\n`);
        if (stale.length > 0) {
          process.stderr.write('ecomstream diagram: the committed diagrams are out of date; run `npm run diagram`\n');
          process.exitCode = 1;
        } else process.stdout.write(`${set.files.length} diagram files in ${rel(outDir)} are up to date\n`);
      } else {
        for (const f of writeDiagrams(outDir, set.files)) process.stdout.write(`wrote ${rel(f)}\n`);
        const s = set.smallestText;
        process.stdout.write(
          `A4 page at 300 DPI: print scale ${set.printScale.toFixed(3)} (at least ${MIN_PRINT_SCALE}); ` +
            `smallest text ${s.drawingPt} pt in the drawing, ${s.printedPt.toFixed(1)} pt printed\n`,
        );
      }
      for (const p of set.problems) process.stderr.write(`layout problem: ${p}\n`);
      if (set.problems.length > 0) process.exitCode = 1;
    });
}
