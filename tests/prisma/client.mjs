// Prisma Client (Prisma 7, driver adapter @prisma/adapter-pg) against a NeuroFlow Hub database:
// prints one JSON document with the row count of every model, then creates an organization, a
// user, a workflow and one execution of it with nothing but the required fields (the database
// fills in ids and defaults) and prints what Prisma read back, relations included.
//   HUB_PRISMA_DIR=... node tests/prisma/client.mjs postgresql://...
// `prisma generate` must have run on the schema from `hub db prisma` first.
import { require } from './packages.mjs'

const { PrismaClient, Prisma } = require('@prisma/client')
const { PrismaPg } = require('@prisma/adapter-pg')

const url = process.argv[2]
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })
const delegate = (model) => prisma[model[0].toLowerCase() + model.slice(1)]

try {
  const counts = {}
  const sampled = {}
  for (const model of Object.values(Prisma.ModelName)) {
    counts[model] = await delegate(model).count()
    // Reading a row proves every column type converts (jsonb[], numeric, enums, arrays).
    sampled[model] = (await delegate(model).findFirst({ orderBy: { id: 'asc' } }))?.id ?? null
  }

  const suffix = process.argv[3] ?? 'prisma'
  const organization = await prisma.organization.create({
    data: { name: 'Made by Prisma', slug: `made-by-${suffix}` },
  })
  const user = await prisma.user.create({ data: { email: `${suffix}@prisma.example` } })
  const workflow = await prisma.workflow.create({
    data: {
      name: 'Made by Prisma', nodes: [], edges: [],
      organization: { connect: { id: organization.id } },
      creator: { connect: { id: user.id } },
    },
  })
  // A composite tenant relation: (organizationId, workflowId) -> workflows (organizationId, id).
  const execution = await prisma.workflowExecution.create({
    data: { organizationId: organization.id, workflowId: workflow.id },
    include: { workflow: { include: { creator: true } } },
  })
  const created = { organization, user, workflow, execution }
  console.log(JSON.stringify({ counts, sampled, created }))
} finally {
  await prisma.$disconnect()
}
