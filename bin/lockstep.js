#!/usr/bin/env node
// Pulls fsync many small files at once; fsync waits on the disk, not the CPU,
// so a larger libuv pool than the default 4 finishes them sooner. It must be
// set before the pool starts, hence the dynamic imports.
process.env.UV_THREADPOOL_SIZE ??= '16';
// Keeps the heap small (see src/scan/heap-flags.ts).
(await import('../dist/scan/heap-flags.js')).applyHeapFlags();
await import('../dist/cli/main.js');
