#!/usr/bin/env node
// The `vipmesh` program. main.ts only exports, so tests and tools can import it.
import { EXIT_INTERNAL, internalErrorText, isClosedPipe } from './errors.js';
import { main } from './main.js';

// A reader that goes away early (`vipmesh plan | head`) is not an error; any other
// failure to write, or anything that escapes main, ends in one line, not a stack.
let outputFailed = false;
process.stdout.on('error', (error) => {
  if (isClosedPipe(error) || outputFailed) return;
  outputFailed = true;
  process.stderr.write(`vipmesh: cannot write the output: ${error.message}\n`);
  process.exitCode = EXIT_INTERNAL;
});
process.on('uncaughtException', (error) => {
  process.stderr.write(internalErrorText(error));
  process.exit(EXIT_INTERNAL);
});

process.exitCode = await main(process.argv.slice(2));
