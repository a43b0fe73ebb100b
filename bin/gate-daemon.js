#!/usr/bin/env node
// The `gate-daemon` command. Node >= 22.18 runs the TypeScript sources directly.
import '../src/daemon/main.ts';
