#!/usr/bin/env node
// The `gate-server` command. Node >= 22.18 runs the TypeScript sources directly.
import '../src/server/main.ts';
