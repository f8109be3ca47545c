import t from 'tap'
import { matchRoute, routes, routesByName, validateInput, schemas } from '../../lib/routes.js'
import { UrlBuilder, resolveBase } from '../../lib/urls.js'
import { digestOf } from '../../lib/digest.js'

const digest = digestOf('content')
const urls = new UrlBuilder()

t.test('every route has a descriptor with methods, errors and a description', async (t) => {
  t.same(routes.map((route) => route.name).sort(), ['base', 'blob', 'blob-upload', 'blob-upload-chunk', 'catalog', 'manifest', 'referrers', 'tags'])
  for (const route of routes) {
    t.ok(route.description.length > 0, `${route.name} described`)
    for (const [method, descriptor] of Object.entries(route.methods)) {
      t.ok(descriptor.responses.length > 0, `${route.name} ${method} responses`)
      t.ok(descriptor.errors.length > 0, `${route.name} ${method} errors`)
    }
  }
})

const reserved = ['blobs', 'manifests', 'tags', 'uploads', 'referrers', 'list']
const names = ['a', 'library/ubuntu', 'a/b/c/d/e/f/g/h', ...reserved, ...reserved.map((word) => `x/${word}/y`), `${reserved.join('/')}`]

for (const name of names) {
  t.test(`routes resolve for name ${name}`, async (t) => {
    const cases: Array<[string, string, Record<string, string>]> = [
      [urls.tags(name), 'tags', { name }],
      [urls.manifest(name, 'latest'), 'manifest', { name, reference: 'latest' }],
      [urls.manifest(name, digest), 'manifest', { name, reference: digest }],
      [urls.blob(name, digest), 'blob', { name, digest }],
      [urls.blobUpload(name), 'blob-upload', { name }],
      [urls.blobUploadChunk(name, 'abc-123'), 'blob-upload-chunk', { name, uuid: 'abc-123' }],
      [urls.referrers(name, digest), 'referrers', { name, digest }]
    ]
    for (const [url, route, vars] of cases) {
      const match = matchRoute(url.slice('/v2/'.length).split('?')[0] as string)
      t.equal(match?.route.name, route, url)
      t.same(match?.vars, vars, url)
    }
  })
}

t.test('base, catalog, unknown shapes and invalid names', async (t) => {
  t.equal(matchRoute('')?.route.name, 'base')
  t.equal(matchRoute('_catalog')?.route.name, 'catalog')
  t.equal(matchRoute('a/unknown/thing'), undefined)
  t.equal(matchRoute('a'), undefined)
  t.throws(() => matchRoute('UPPER/manifests/latest'), { code: 'NAME_INVALID' })
  t.throws(() => matchRoute('a//b/blobs/' + digest), { code: 'NAME_INVALID' })
  t.throws(() => matchRoute('a%2Fb/tags/list'), { code: 'NAME_INVALID' })
  t.throws(() => matchRoute(`${'a'.repeat(256)}/tags/list`), { code: 'NAME_INVALID' })
  t.same(matchRoute(`a/blobs/${digest.replace(':', '%3A')}`)?.vars, { name: 'a', digest }, 'percent-encoded digest is decoded')
})

t.test('the URL builder fills every template and encodes queries', async (t) => {
  const absolute = new UrlBuilder({ base: 'https://registry.example.com/' })
  t.equal(absolute.apiRoot(), 'https://registry.example.com/v2/')
  t.equal(absolute.catalog({ n: 10, last: 'a/b' }), 'https://registry.example.com/v2/_catalog?n=10&last=a%2Fb')
  t.equal(urls.tags('a/b', { n: 2 }), '/v2/a/b/tags/list?n=2')
  t.equal(urls.manifest('a', digest, { tag: ['x', 'y'] }), `/v2/a/manifests/${digest}?tag=x&tag=y`)
  t.equal(urls.blobUpload('a', { mount: digest, from: 'b' }), `/v2/a/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=b`)
  t.equal(urls.blobUploadChunk('a', 'u', { digest, size: 3 }), `/v2/a/blobs/uploads/u?digest=${encodeURIComponent(digest)}&size=3`)
  t.equal(urls.referrers('a', digest, { artifactType: 'application/x' }), `/v2/a/referrers/${digest}?artifactType=application%2Fx`)
  t.equal(routesByName.blob.path, '/v2/{name}/blobs/{digest}')
})

t.test('the base of absolute URLs: public URL, host, forwarded headers when trusted, relative', async (t) => {
  t.equal(resolveBase({ publicUrl: 'https://r.example/' }, { host: 'x' }), 'https://r.example')
  t.equal(resolveBase({}, { host: 'localhost:5000', protocol: 'http' }), 'http://localhost:5000')
  t.equal(resolveBase({}, { host: 'a', protocol: 'http', forwardedHost: 'b', forwardedProto: 'https' }), 'http://a', 'untrusted forwarded headers ignored')
  t.equal(resolveBase({ trustForwarded: true }, { host: 'a', protocol: 'http', forwardedHost: 'b, c', forwardedProto: 'https' }), 'https://b')
  t.equal(resolveBase({ relative: true }, { host: 'a' }), '')
  t.equal(resolveBase({}, { host: 'evil/host' }), '', 'a host with a slash is not trusted')
})

t.test('input validation answers with the code the failing property carries', async (t) => {
  t.throws(() => validateInput(schemas.tagsQuery, { n: 'x' }, 'UNSUPPORTED'), { code: 'PAGINATION_NUMBER_INVALID' })
  t.throws(() => validateInput(schemas.uploadCompleteQuery, {}, 'UNSUPPORTED'), { code: 'DIGEST_INVALID' })
  t.throws(() => validateInput(schemas.uploadCompleteQuery, { digest, size: '-1' }, 'UNSUPPORTED'), { code: 'SIZE_INVALID' })
  t.same(validateInput(schemas.tagsQuery, { n: '5', last: 'a' }, 'UNSUPPORTED'), { n: '5', last: 'a' })
})

t.test('matchers come from the templates: a route table takes extension routes under /v2/_oci/ only', async (t) => {
  const { RouteTable, defineRoute, EXTENSION_PREFIX } = await import('../../lib/routes.js')
  const { Type } = await import('@sinclair/typebox')
  const table = new RouteTable(routes)
  const report = defineRoute({
    name: 'ext-report',
    path: `${EXTENSION_PREFIX}report/{name}/summary`,
    description: 'A report.',
    params: Type.Object({ name: schemas.name }),
    methods: { GET: { description: 'The report.', access: 'pull', responses: [{ status: 200, description: 'It.' }], errors: ['NAME_INVALID'] } }
  })
  table.add(report, { extension: true })
  t.same(table.match('_oci/report/library/ubuntu/summary'), { route: report, vars: { name: 'library/ubuntu' } })
  t.equal(table.match('library/ubuntu/manifests/latest')?.route.name, 'manifest', 'the spec\'s routes still match')
  t.equal(table.match('_oci/report/a'), undefined)
  t.throws(() => table.add({ ...report, name: 'elsewhere', path: '/v2/{name}/report' }, { extension: true }), /not under \/v2\/_oci\//)
  t.throws(() => table.add(report, { extension: true }), /already defined/)
  t.throws(() => table.add({ ...report, name: 'undescribed', path: `${EXTENSION_PREFIX}x/{id}` }, { extension: true }), /no schema in params/)
})

t.test('every upload id of the route grammar is a valid storage path segment', async (t) => {
  const { UPLOAD_ID_PATTERN } = await import('../../lib/reference.js')
  const { isValidSegment } = await import('../../lib/storage/driver.js')
  const { randomUUID } = await import('node:crypto')
  const grammar = new RegExp(`^${UPLOAD_ID_PATTERN}$`)
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=.+/%:'
  const accepted: string[] = []
  for (let i = 0; i < 5000; i++) {
    let id = ''
    const length = 1 + (i % 140)
    // Mostly letters and digits, now and then a character outside the grammar.
    for (let j = 0; j < length; j++) id += alphabet[(i * 31 + j * 17 + (i >> 3) * j) % (i % 7 === 0 ? alphabet.length : 64)]
    if (grammar.test(id)) accepted.push(id)
  }
  t.ok(accepted.length > 1000, `${accepted.length} generated ids follow the grammar`)
  t.same(accepted.filter((id) => !isValidSegment(id)), [], 'each is a storage path segment')
  t.ok(grammar.test(randomUUID()), 'the ids this registry makes')
  for (const bad of ['==========', 'a=b', '.', '..', 'a.b', '', 'x'.repeat(129)]) t.notOk(grammar.test(bad), `refused: ${bad.slice(0, 12)}`)
})
