#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the "prepare" script).
// A reader that closed the pipe (`ecomstream … | head`) wants no more output: end quietly, as Unix tools do,
// instead of dying on an unhandled EPIPE with a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2)));
