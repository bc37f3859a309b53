// `prisma migrate diff` from a live database to a schema.prisma, on @prisma/schema-engine-wasm
// through @prisma/adapter-pg (the schema-engine binary cannot be downloaded here):
//   HUB_PRISMA_DIR=... node --experimental-wasm-modules tests/prisma/diff.mjs URL schema.prisma
// Prints the SQL Prisma would run to make the database match the schema ("-- This is an empty
// migration." when they agree); exit code 0 when empty, 2 when not, 1 on an error.
// hub_migrations is ours alone: it is left out of the schema, and external to Prisma here.
import { readFileSync } from 'node:fs'
import { load, require } from './packages.mjs'

const [url, schemaPath] = process.argv.slice(2)
const { PrismaPg } = require('@prisma/adapter-pg')
const { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } = require('@prisma/driver-adapter-utils')
const { SchemaEngine } = await load('@prisma/schema-engine-wasm')

// The engine's panics are reported through this global (Prisma's CLI sets it up the same way).
globalThis.PRISMA_WASM_PANIC_REGISTRY = {
  message: '',
  set_message(message) { this.message = message },
}

// adapter-pg 7.10 cannot convert PostgreSQL's one-byte "char" (oid 18), which the engine reads
// from the catalogs (pg_constraint.contype ...) and expects as a Character column: report those
// columns as text to the adapter, then as Character to the engine.
const factory = new PrismaPg({ connectionString: url })
const probe = await factory.connect()
const queryable = Object.getPrototypeOf(Object.getPrototypeOf(probe))
await probe.dispose()
const charColumns = new WeakMap()
const performIO = queryable.performIO
queryable.performIO = async function (query) {
  const result = await performIO.call(this, query)
  const isChar = result.fields.map((field) => field.dataTypeID === 18)
  if (isChar.some(Boolean)) {
    for (const field of result.fields) if (field.dataTypeID === 18) field.dataTypeID = 25
    charColumns.set(result.rows, isChar)
  }
  return result
}
const queryRaw = queryable.queryRaw
queryable.queryRaw = async function (query) {
  const result = await queryRaw.call(this, query)
  const isChar = charColumns.get(result.rows)
  if (isChar) result.columnTypes = result.columnTypes.map((t, i) => (isChar[i] ? ColumnTypeEnum.Character : t))
  return result
}

const content = readFileSync(schemaPath, 'utf8')
const files = [{ path: schemaPath, content }]
try {
  const engine = await SchemaEngine.new({ datamodels: [[schemaPath, content]] }, () => {},
    bindMigrationAwareSqlAdapterFactory(factory))
  const result = await engine.diff({
    from: { tag: 'schemaDatasource', files, configDir: '.' },
    to: { tag: 'schemaDatamodel', files },
    script: true, exitCode: true,
    filters: { externalTables: ['public.hub_migrations'], externalEnums: [] },
  })
  process.stdout.write(result.stdout ?? '')
  process.exitCode = result.exitCode
} catch (error) {
  console.error(globalThis.PRISMA_WASM_PANIC_REGISTRY.message || error.message)
  process.exitCode = 1
}
