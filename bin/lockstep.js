#!/usr/bin/env node
// Pulls fsync many small files at once; fsync waits on the disk, not the CPU,
// so a larger libuv pool than the default 4 finishes them sooner. It must be
// set before the pool starts, hence the dynamic import.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/main.js');
