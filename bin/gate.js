#!/usr/bin/env node
// The `gate` command: src/cli/main.ts on a Node.js that runs TypeScript (see launch.js).
import { launch } from './launch.js';

await launch('src/cli/main.ts', 'gate');
