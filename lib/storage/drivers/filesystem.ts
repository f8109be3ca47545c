/**
 * The filesystem storage driver; its parts are in `./filesystem/`.
 */

export { FilesystemDriver, type FilesystemDriverOptions } from './filesystem/driver.js'
export type { ReadCacheOptions } from './filesystem/read-cache.js'
