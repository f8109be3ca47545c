import t from 'tap'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { startS3Server } from '../s3.js'
import { driverSuite } from './driver-suite.js'

const server = await startS3Server(t)

driverSuite(t, 's3', async () => ({ driver: new S3Driver(server.driverOptions(await server.createBucket())) }))
