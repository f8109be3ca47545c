/**
 * A storage driver over an S3 bucket (AWS S3 or any S3-compatible service), on the AWS SDK v3.
 * The entry point: the driver is in s3/, one file per concern.
 *
 * - s3/driver.ts: the driver contract over the bucket (keys, reads, listings, move, delete);
 * - s3/options.ts: the options, and an SDK client that works on S3-compatible services;
 * - s3/objects.ts: single-object requests, listings and batched deletes;
 * - s3/segments.ts: how a file appended over several writers is kept (segments and an index);
 * - s3/multipart.ts: multipart uploads, and joins by server-side part copies;
 * - s3/writer.ts: the appending writer;
 * - s3/errors.ts: what an S3 failure means (missing, transient, unsupported).
 */

export { S3Driver } from './s3/driver.js'
export { S3_MIN_PART_SIZE, type S3DriverLogger, type S3DriverOptions } from './s3/options.js'
