/**
 * Past 1 GiB through every driver the registry ships, as the storage base layer runs them: the
 * bytes read are the bytes written, a read at an offset near the end works, and memory stays flat
 * both ways (except in the in-memory driver, which holds the data itself). The fast tier runs the
 * same drivers through the driver suite with small files.
 */

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { startS3Server } from '../s3.js'
import { largeFileCase } from '../storage/driver-suite.js'

largeFileCase(t, 'filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'oci-registry-large-'))
  return { driver: new FilesystemDriver({ root }), cleanup: () => rm(root, { recursive: true, force: true }) }
})

largeFileCase(t, 'inmemory', async () => ({ driver: new InMemoryDriver() }), { holdsDataInMemory: true })

const server = await startS3Server(t)
largeFileCase(t, 's3', async () => ({ driver: new S3Driver(server.driverOptions(await server.createBucket())) }))
