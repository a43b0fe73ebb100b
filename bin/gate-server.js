#!/usr/bin/env node
// The `gate-server` command: src/server/main.ts on a Node.js that runs TypeScript (see launch.js).
import { launch } from './launch.js';

await launch('src/server/main.ts', 'gate-server');
