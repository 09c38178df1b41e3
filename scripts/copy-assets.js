// Copies non-TypeScript files that the compiled code reads at run time
// (SQL migrations) from src/ to dist/.
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/store/migrations', { recursive: true });
cpSync('src/store/migrations', 'dist/store/migrations', { recursive: true });
