// The npm packages of $HUB_PRISMA_DIR (installed from tests/prisma/package.json by .ci/run),
// loaded from there so these scripts can stay in the repository.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.env.HUB_PRISMA_DIR
if (!dir) {
  console.error('HUB_PRISMA_DIR is not set: the folder where tests/prisma/package.json was installed')
  process.exit(2)
}
export const require = createRequire(join(dir, 'package.json'))

// Some packages are ES modules only (@prisma/schema-engine-wasm): import them by path.
export function load(name) {
  return import(pathToFileURL(require.resolve(name)).href)
}
