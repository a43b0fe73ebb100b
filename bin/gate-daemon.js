#!/usr/bin/env node
// The `gate-daemon` command: src/daemon/main.ts on a Node.js that runs TypeScript (see launch.js).
import { launch } from './launch.js';

await launch('src/daemon/main.ts', 'gate-daemon');
