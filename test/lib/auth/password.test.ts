import t from 'tap'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { bcryptCost, isBcryptHash, PasswordVerifier, refusedPassword, safeEqual, tooLongForBcrypt, TooManyChecksError, type BcryptCompare } from '../../../lib/auth/password.js'
import { HtpasswdFile, parseBasicAuth, parseHtpasswd } from '../../../lib/auth/htpasswd.js'
import { htpasswdFile, htpasswdText, tempDir } from '../../auth/fixtures.js'

/** A compare that counts its calls and checks `hash === 'h:' + password`. */
function countingCompare (): { compare: BcryptCompare, calls: Array<{ password: string, hash: string }> } {
  const calls: Array<{ password: string, hash: string }> = []
  return {
    calls,
    compare: async (password, hash) => {
      calls.push({ password, hash })
      return hash === `h:${password}`
    }
  }
}

t.test('a successful check is remembered; a wrong one is not; a changed hash is checked again', async (t) => {
  let now = 1000
  const { compare, calls } = countingCompare()
  const verifier = new PasswordVerifier({ compare, now: () => now, cacheSeconds: 60 })
  t.equal(await verifier.verify('alice', 'pw', 'h:pw'), true)
  t.equal(await verifier.verify('alice', 'pw', 'h:pw'), true)
  t.equal(calls.length, 1, 'the second check did not run bcrypt')
  t.equal(await verifier.verify('alice', 'wrong', 'h:pw'), false, 'a cached user with another password is refused')
  t.equal(calls.length, 2, 'and that took a real check')
  t.equal(await verifier.verify('alice', 'wrong', 'h:pw'), false)
  t.equal(calls.length, 3, 'failures are never remembered')
  t.equal(await verifier.verify('alice', 'pw', 'h:new'), false, 'a new hash in the file invalidates what was remembered')
  t.equal(await verifier.verify('alice', 'new', 'h:new'), true)
  now += 61_000
  t.equal(await verifier.verify('alice', 'new', 'h:new'), true)
  t.equal(calls.length, 6, 'an expired entry is checked again')
  const uncached = new PasswordVerifier({ compare, cacheSeconds: 0 })
  await uncached.verify('bob', 'x', 'h:x')
  await uncached.verify('bob', 'x', 'h:x')
  t.equal(calls.length, 8, 'cacheSeconds 0 turns the cache off')
})

t.test('an unknown user costs a bcrypt check of the same cost as a known one', async (t) => {
  const { compare, calls } = countingCompare()
  const costs: number[] = []
  const verifier = new PasswordVerifier({ compare, hash: async (password, cost) => { costs.push(cost); return `dummy:${password}` } })
  t.equal(await verifier.verify('nobody', 'pw', undefined, 7), false)
  t.equal(await verifier.verify('nobody', 'h:pw', undefined, 7), false, 'never true, whatever the password')
  t.equal(calls.length, 2, 'each unknown user ran a compare')
  t.match(calls[0]?.hash, /^dummy:/)
  t.same(costs, [7], 'the dummy hash is made once per cost, at the cost of the file\'s entries')
})

t.test('checks are bounded: at most maxConcurrent run, at most maxQueued wait', async (t) => {
  let running = 0
  let peak = 0
  const release: Array<() => void> = []
  const compare: BcryptCompare = async () => {
    running++
    peak = Math.max(peak, running)
    await new Promise<void>((resolve) => release.push(resolve))
    running--
    return true
  }
  const verifier = new PasswordVerifier({ compare, maxConcurrent: 2, maxQueued: 3, cacheSeconds: 0 })
  const pending = Array.from({ length: 5 }, async (_, i) => await verifier.verify(`u${i}`, 'pw', 'hash'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(running, 2, 'two run')
  await t.rejects(verifier.verify('u5', 'pw', 'hash'), TooManyChecksError, 'the sixth is refused: 2 running and 3 waiting')
  for (let i = 0; i < 5; i++) {
    t.ok(running <= 2, 'still at most two')
    release.shift()?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(await Promise.all(pending), [true, true, true, true, true])
  t.equal(peak, 2, 'never more than two at once')
})

t.test('the native check reads the $2y$ hashes htpasswd -B writes', async (t) => {
  const hash = (await htpasswdText({ alice: 's3cret' }, 5)).trim().split(':')[1] as string
  t.match(hash, /^\$2y\$05\$/)
  t.ok(isBcryptHash(hash))
  t.equal(bcryptCost(hash), 5)
  t.equal(await new PasswordVerifier().verify('alice', 's3cret', hash), true)
  t.equal(await new PasswordVerifier().verify('alice', 'S3cret', hash), false)
})

t.test('a password longer than bcrypt reads (72 bytes) is refused without a check, for every user', async (t) => {
  const { compare, calls } = countingCompare()
  const verifier = new PasswordVerifier({ compare, hash: async (password) => `dummy:${password}` })
  const long = 'p'.repeat(73)
  t.equal(tooLongForBcrypt(long), true)
  t.equal(tooLongForBcrypt('p'.repeat(72)), false)
  t.equal(tooLongForBcrypt('€'.repeat(25)), true, 'bytes count, not characters (75 bytes)')
  t.equal(await verifier.verify('alice', long, `h:${long}`), false, 'even the password of the entry')
  t.equal(await verifier.verify('nobody', long, undefined), false)
  t.equal(calls.length, 0, 'no bcrypt check ran')
  t.equal(await verifier.verify('alice', 'p'.repeat(72), `h:${'p'.repeat(72)}`), true, '72 bytes is checked')
  t.match(refusedPassword(long), /longer than 72 bytes/)
  t.equal(refusedPassword('short'), 'wrong user name or password')

  // The native check alone would admit a different password sharing the first 72 bytes.
  const hash = (await htpasswdText({ alice: `${'x'.repeat(72)}-mine` })).trim().split(':')[1] as string
  t.equal(await new PasswordVerifier().verify('alice', `${'x'.repeat(72)}-another`, hash), false)
})

t.test('safeEqual', async (t) => {
  t.equal(safeEqual(Buffer.from('abc'), Buffer.from('abc')), true)
  t.equal(safeEqual(Buffer.from('abc'), Buffer.from('abd')), false)
  t.equal(safeEqual(Buffer.from('abc'), Buffer.from('abcd')), false)
  t.equal(safeEqual(Buffer.alloc(0), Buffer.alloc(0)), true)
})

t.test('htpasswd parsing: bcrypt entries only, comments and blank lines ignored', async (t) => {
  const table = parseHtpasswd([
    '# users',
    '',
    'alice:$2y$05$699d3N1Mt/enZXxTmIZ9Du0aUNWVE6UDaDMBBoWQDPlruAXad.eii',
    'md5user:$apr1$abc$def',
    'shauser:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
    'bob:$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234',
    'nocolon',
    ':$2y$05$699d3N1Mt/enZXxTmIZ9Du0aUNWVE6UDaDMBBoWQDPlruAXad.eii\r'
  ].join('\r\n'))
  t.same([...table.users.keys()], ['alice', 'bob'])
  t.same(table.skipped, [4, 5, 7, 8])
  t.equal(table.cost, 5, 'the cost of the first entry')
})

t.test('Basic credentials', async (t) => {
  const header = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`
  t.same(parseBasicAuth(header('alice:pa:ss')), { username: 'alice', password: 'pa:ss' }, 'the password may hold colons')
  t.same(parseBasicAuth(header('alice:')), { username: 'alice', password: '' })
  t.same(parseBasicAuth(`basic  ${Buffer.from('a:b').toString('base64')}`), { username: 'a', password: 'b' })
  t.equal(parseBasicAuth(header(':pw')), undefined, 'no user name')
  t.equal(parseBasicAuth(header('nocolon')), undefined)
  t.equal(parseBasicAuth('Bearer abc'), undefined)
  t.equal(parseBasicAuth('Basic !!!'), undefined)
  t.equal(parseBasicAuth(undefined), undefined)
})

t.test('an htpasswd file is read again when it changes, and fails closed when it cannot be read', async (t) => {
  const path = await htpasswdFile(t, { alice: 'one' })
  const events: string[] = []
  const file = new HtpasswdFile(path, { onEvent: (event) => events.push(event.kind) })
  await file.load()
  t.equal(await file.verify({ username: 'alice', password: 'one' }), true)
  t.equal(await file.verify({ username: 'bob', password: 'two' }), false)

  // As `htpasswd -B` does: a new file renamed over the old one.
  const next = `${path}.new`
  await writeFile(next, await htpasswdText({ alice: 'changed', bob: 'two' }))
  await rename(next, path)
  t.equal(await file.verify({ username: 'alice', password: 'one' }), false, 'the old password no longer works')
  t.equal(await file.verify({ username: 'alice', password: 'changed' }), true)
  t.equal(await file.verify({ username: 'bob', password: 'two' }), true, 'a new user works at once')

  await rm(path)
  t.equal(await file.verify({ username: 'bob', password: 'two' }), false, 'an unreadable file lets nobody in')
  await writeFile(path, await htpasswdText({ bob: 'two' }))
  t.equal(await file.verify({ username: 'bob', password: 'two' }), true, 'and recovers when it is back')
  t.same(events, ['loaded', 'loaded', 'error', 'loaded'])
  t.same(await file.users(), ['bob'])
})

t.test('a missing htpasswd file fails at load', async (t) => {
  const dir = await tempDir(t)
  await t.rejects(new HtpasswdFile(join(dir, 'missing')).load(), { code: 'ENOENT' })
})
