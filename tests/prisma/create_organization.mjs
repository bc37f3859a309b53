// The platform's plain "create organization" through Prisma Client on the server (the
// database's owner, as a server-side Prisma connects): the organization and its OWNER's
// membership in one nested create, with no accepted_at. Prints the organization and its
// memberships as Prisma read them back.
//   HUB_PRISMA_DIR=... node tests/prisma/create_organization.mjs postgresql://... USER_ID SLUG
// `prisma generate` must have run on the schema from `hub db prisma` first.
import { require } from './packages.mjs'

const { PrismaClient } = require('@prisma/client')
const { PrismaPg } = require('@prisma/adapter-pg')

const [url, userId, slug] = process.argv.slice(2)
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })

try {
  const organization = await prisma.organization.create({
    data: { name: 'Made by the platform', slug, memberships: { create: { userId, role: 'OWNER' } } },
    include: { memberships: true },
  })
  console.log(JSON.stringify(organization))
} finally {
  await prisma.$disconnect()
}
