#!/usr/bin/env node
// The `gate` command. Node >= 22.18 runs the TypeScript sources directly.
import '../src/cli/main.ts';
