// Removes a build output folder before it is built again, so that nothing
// from an earlier build (a module since moved or deleted) lingers in it and
// ends up in the package.
import { rmSync } from 'node:fs';

for (const dir of process.argv.slice(2)) rmSync(dir, { recursive: true, force: true });
