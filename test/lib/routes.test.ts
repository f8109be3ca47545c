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
