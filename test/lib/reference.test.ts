import t from 'tap'
import { assertName, isValidName, isValidTag, parseReference } from '../../lib/reference.js'
import { parseDigest, parseAlgorithm, digestOf, Digester } from '../../lib/digest.js'

t.test('repository names follow the spec grammar', async (t) => {
  for (const name of ['a', 'library/ubuntu', 'a/b/c/d/e/f', 'my-app', 'my--app', 'my_app', 'my__app', 'my.app', 'a0/b1', 'blobs', 'x/manifests/y', 'tags/list']) {
    t.ok(isValidName(name), name)
  }
  for (const name of ['', 'A', 'a/', '/a', 'a//b', 'a_', '-a', 'a..b', 'a___b', 'a/B', 'a b', 'a%2Fb', 'a:b', '..', 'a/../b']) {
    t.notOk(isValidName(name), JSON.stringify(name))
  }
  t.ok(isValidName('a'.repeat(255)))
  t.notOk(isValidName('a'.repeat(256)))
  t.throws(() => assertName('a'.repeat(256)), { code: 'NAME_INVALID' })
  t.throws(() => assertName('UPPER'), { code: 'NAME_INVALID' })
})

t.test('tags follow the spec grammar', async (t) => {
  for (const tag of ['latest', 'v1.0.0', '_x', 'A-b_c.d', 'a'.repeat(128)]) t.ok(isValidTag(tag), tag)
  for (const tag of ['', '.a', '-a', 'a'.repeat(129), 'a/b', 'a:b', 'a b']) t.notOk(isValidTag(tag), JSON.stringify(tag))
})

t.test('references are tags or digests', async (t) => {
  t.same(parseReference('latest'), { kind: 'tag', tag: 'latest' })
  const digest = digestOf('x')
  t.same(parseReference(digest), { kind: 'digest', digest })
  t.throws(() => parseReference('sha256:'), { code: 'DIGEST_INVALID' })
  t.throws(() => parseReference('-bad'), { code: 'TAG_INVALID' })
})

t.test('digests: sha256 and sha512, malformed ones refused, unknown algorithms unsupported', async (t) => {
  const sha256 = digestOf('hello')
  t.equal(sha256, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
  t.equal(parseDigest(sha256).hex.length, 64)
  const sha512 = digestOf('hello', 'sha512')
  t.equal(parseDigest(sha512).algorithm, 'sha512')
  t.throws(() => parseDigest('sha256:abc'), { code: 'DIGEST_INVALID' })
  t.throws(() => parseDigest(sha256.toUpperCase()), { code: 'DIGEST_INVALID' })
  t.throws(() => parseDigest('nocolon'), { code: 'DIGEST_INVALID' })
  t.throws(() => parseDigest('md5:' + 'a'.repeat(32)), { code: 'DIGEST_INVALID', statusCode: 400 })
  t.equal(parseAlgorithm('sha512'), 'sha512')
  t.throws(() => parseAlgorithm('SHA!'), { code: 'DIGEST_INVALID' })
  t.throws(() => parseAlgorithm('blake3'), { code: 'DIGEST_INVALID', statusCode: 400 })
})

t.test('a digester hashes as bytes stream by and can go on after a digest', async (t) => {
  const digester = new Digester()
  digester.update(Buffer.from('hel'))
  t.equal(digester.digest(), digestOf('hel'))
  digester.update(Buffer.from('lo'))
  t.equal(digester.digest(), digestOf('hello'))
  t.equal(digester.size, 5)
})
