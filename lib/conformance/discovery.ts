/** Content discovery: the tag list (order, `n`, `last`, `Link`) and the referrers API (OCI 1.1). */

import { randomBytes } from 'node:crypto'
import { digestOf } from '../digest.js'
import { headerOf, nextLink } from '../client/index.js'
import { MediaTypes } from '../manifest/media-types.js'
import { ArtifactTypes, EMPTY_JSON, blob, image, index, type Descriptor, type Manifest } from './data.js'
import { cleanUp, pushBlob, pushManifest, send, type CheckDefinition, type Context } from './common.js'
import { expectContentType, expectEqual, expectErrorBody, expectStatus, expectTrue, fail, jsonOf } from './expect.js'

interface TagList { name: string, tags: string[] | null }
interface ReferrersIndex { schemaVersion?: number, mediaType?: string, manifests?: Descriptor[] }

function lexical (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function caseInsensitive (a: string, b: string): number {
  return lexical(a.toLowerCase(), b.toLowerCase())
}

async function tags (context: Context, query: Record<string, string> = {}): Promise<{ list: string[], link?: string }> {
  const url = new URL(context.client.urls.tags(context.repo))
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value)
  const response = await send(context, { method: 'GET', url: url.toString() })
  expectStatus(response, 200)
  const body = jsonOf<TagList>(response)
  expectEqual(body.name, context.repo, 'the name in the tag list')
  const link = headerOf(response.headers, 'link')
  return { list: body.tags ?? [], ...(link === undefined ? {} : { link }) }
}

async function referrers (context: Context, subject: string, artifactType?: string): Promise<{ manifests: Descriptor[], filtered: boolean }> {
  const response = await send(context, { method: 'GET', url: context.client.urls.referrers(context.repo, subject, artifactType === undefined ? {} : { artifactType }), headers: { accept: MediaTypes.ociIndex } })
  expectStatus(response, 200)
  expectContentType(response, MediaTypes.ociIndex)
  const body = jsonOf<ReferrersIndex>(response)
  expectEqual(body.schemaVersion, 2, 'the referrers index schemaVersion')
  expectEqual(body.mediaType, MediaTypes.ociIndex, 'the referrers index mediaType')
  const filters = (headerOf(response.headers, 'oci-filters-applied') ?? '').split(',').map((filter) => filter.trim())
  return { manifests: body.manifests ?? [], filtered: filters.includes('artifactType') }
}

/** The descriptor the referrers API must list for a manifest. */
function expectedDescriptor (item: Manifest): Descriptor {
  const json = JSON.parse(item.content.toString('utf8')) as { artifactType?: string, config?: { mediaType: string }, annotations?: Record<string, string> }
  const artifactType = json.artifactType ?? json.config?.mediaType
  return {
    mediaType: item.mediaType,
    digest: item.digest,
    size: item.content.length,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(json.annotations === undefined ? {} : { annotations: json.annotations })
  }
}

function expectListed (listed: Descriptor[], expected: Manifest[]): void {
  for (const item of expected) {
    const want = expectedDescriptor(item)
    const found = listed.find((entry) => entry.digest === item.digest)
    if (found === undefined) fail(`expected referrer ${item.digest} in the list, got ${listed.map((entry) => entry.digest).join(', ') || 'none'}`)
    expectEqual(found.mediaType, want.mediaType, `the mediaType of referrer ${item.digest}`)
    expectEqual(found.size, want.size, `the size of referrer ${item.digest}`)
    expectEqual(found.artifactType, want.artifactType, `the artifactType of referrer ${item.digest}`)
    for (const [key, value] of Object.entries(want.annotations ?? {})) {
      expectEqual(found.annotations?.[key], value, `annotation ${key} of referrer ${item.digest}`)
    }
  }
}

export function discoveryChecks (): CheckDefinition[] {
  const tagged = image()
  const suffix = randomBytes(3).toString('hex')
  const tagNames = [0, 1, 2, 3].flatMap((i) => [`test${i}-${suffix}`, `TEST${i}-${suffix}`])

  const subject = image()
  const emptyConfig = { content: EMPTY_JSON, mediaType: MediaTypes.ociEmpty }
  const annotated = (value: string): Record<string, string> => ({ 'org.opencontainers.conformance': value })
  // Referrers pushed before their subject (allowed), then the subject, then more referrers.
  const before = [
    image({ layers: 1, config: { content: Buffer.from(JSON.stringify({ conformance: 'config artifact a', nonce: suffix })), mediaType: ArtifactTypes.a }, subject: subject.manifest.descriptor, annotations: annotated('a-config') }),
    image({ artifactType: ArtifactTypes.a, config: emptyConfig, layers: 1, subject: subject.manifest.descriptor, annotations: annotated('a-layer') })
  ]
  const indexReferrer = index([before[0]?.manifest.descriptor as Descriptor], { artifactType: ArtifactTypes.b, subject: subject.manifest.descriptor, annotations: annotated('b-index') })
  const after = [
    image({ layers: 1, config: { content: Buffer.from(JSON.stringify({ conformance: 'config artifact b', nonce: suffix })), mediaType: ArtifactTypes.b }, subject: subject.manifest.descriptor, annotations: annotated('b-config') }),
    image({ artifactType: ArtifactTypes.b, config: emptyConfig, layers: 1, subject: subject.manifest.descriptor, annotations: annotated('b-layer') })
  ]
  const missingSubject: Descriptor = { mediaType: MediaTypes.ociManifest, digest: digestOf(randomBytes(32)), size: 1234 }
  const orphan = image({ artifactType: ArtifactTypes.a, config: emptyConfig, layers: 1, subject: missingSubject, annotations: annotated('orphan') })
  const referrerManifests = [...before.map((item) => item.manifest), indexReferrer, ...after.map((item) => item.manifest)]
  const allManifests = [tagged.manifest, ...referrerManifests, subject.manifest, orphan.manifest]
  const allBlobs = [...tagged.blobs, ...subject.blobs, ...before.flatMap((item) => item.blobs), ...after.flatMap((item) => item.blobs), ...orphan.blobs, blob(EMPTY_JSON)]
  const subjectHeaders: string[] = []

  return [
    {
      name: 'setup: push a manifest under eight tags of mixed case',
      run: async (context) => {
        for (const item of tagged.blobs) await pushBlob(context, context.repo, item)
        for (const tag of tagNames) await pushManifest(context, context.repo, tag, tagged.manifest)
      }
    },
    {
      name: 'setup: push referrers (some before their subject, one of a subject that does not exist), then the subject',
      run: async (context) => {
        await pushBlob(context, context.repo, blob(EMPTY_JSON))
        const push = async (item: Manifest): Promise<void> => {
          const response = await pushManifest(context, context.repo, item.digest, item)
          subjectHeaders.push(headerOf(response.headers, 'oci-subject') ?? '')
        }
        for (const item of [...before, ...after, orphan]) for (const part of item.blobs) await pushBlob(context, context.repo, part)
        for (const item of before) await push(item.manifest)
        await push(indexReferrer)
        for (const part of subject.blobs) await pushBlob(context, context.repo, part)
        await pushManifest(context, context.repo, `subject-${suffix}`, subject.manifest)
        for (const item of after) await push(item.manifest)
        await push(orphan.manifest)
      }
    },
    {
      name: 'tag list: 200, every tag, in lexical order',
      run: async (context) => {
        const { list } = await tags(context)
        for (const tag of tagNames) expectTrue(list.includes(tag), `expected tag ${tag} in the list, got ${list.join(', ')}`)
        const sorted = [...list].sort(lexical)
        const insensitive = [...list].sort(caseInsensitive)
        expectTrue(JSON.stringify(list) === JSON.stringify(sorted) || JSON.stringify(list) === JSON.stringify(insensitive), `expected the tags in lexical order, got ${list.join(', ')}`)
      }
    },
    {
      name: 'tag list with n: exactly n tags (or fewer with a Link to the rest)',
      run: async (context) => {
        const all = (await tags(context)).list
        const n = Math.floor(all.length / 2)
        const page = await tags(context, { n: String(n) })
        if (page.link === undefined) expectEqual(page.list.length, n, 'the number of tags')
        else expectTrue(page.list.length <= n, `expected at most ${n} tags, got ${page.list.length}`)
        expectEqual(page.list, all.slice(0, page.list.length), 'the first page')
      }
    },
    {
      name: 'tag list with n and last: the tags after last',
      run: async (context) => {
        const all = (await tags(context)).list
        const n = Math.floor(all.length / 2)
        const last = all[n - 1] as string
        const page = await tags(context, { n: String(n), last })
        expectTrue(!page.list.includes(last), `expected ${last} not to be listed again`)
        expectTrue(page.list.length <= n, `expected at most ${n} tags, got ${page.list.length}`)
        expectEqual(page.list, all.slice(n, n + page.list.length), 'the tags after last')
      }
    },
    {
      name: 'tag list with last only: the tags after last',
      run: async (context) => {
        const all = (await tags(context)).list
        const at = Math.floor(all.length / 2)
        const page = await tags(context, { last: all[at - 1] as string })
        const rest = all.slice(at)
        expectEqual(page.list, page.link === undefined ? rest : rest.slice(0, page.list.length), 'the tags after last')
      }
    },
    {
      name: 'tag list with n=0: an empty list without Link',
      run: async (context) => {
        const page = await tags(context, { n: '0' })
        expectEqual(page.list, [], 'the tags')
        expectEqual(page.link, undefined, 'the Link header')
      }
    },
    {
      name: 'tag list pages: each Link is rel="next" and the pages add up to the whole list',
      run: async (context) => {
        const all = (await tags(context)).list
        let page = await tags(context, { n: '3' })
        const seen = [...page.list]
        if (page.link === undefined) {
          // No Link (the spec's MAY): the page holds exactly n tags, checked above.
          expectEqual(page.list, all.slice(0, 3), 'the first page')
          return
        }
        for (let guard = 0; page.link !== undefined && guard <= all.length; guard++) {
          const next = nextLink(page.link)
          if (next === undefined) fail(`expected a Link with rel="next", got ${page.link}`)
          const response = await send(context, { method: 'GET', url: next })
          expectStatus(response, 200)
          const link = headerOf(response.headers, 'link')
          page = { list: jsonOf<TagList>(response).tags ?? [], ...(link === undefined ? {} : { link }) }
          seen.push(...page.list)
        }
        expectEqual(seen, all, 'the tags of every page')
      }
    },
    {
      name: 'tag list of a repository nobody pushed to: 200 and no tags, or 404',
      run: async (context) => {
        const response = await send(context, { method: 'GET', url: context.client.urls.tags(`${context.repo}/empty-${suffix}`) })
        expectStatus(response, 200, 404)
        if (response.status === 200) expectEqual(jsonOf<TagList>(response).tags ?? [], [], 'the tags')
        else expectErrorBody(response, ['NAME_UNKNOWN'])
      }
    },
    {
      name: 'referrers of a digest without referrers: 200 and an empty index',
      run: async (context) => {
        const { manifests } = await referrers(context, digestOf(randomBytes(32)))
        expectEqual(manifests, [], 'the referrers')
      }
    },
    {
      name: 'manifest PUT with a subject answers OCI-Subject with the subject\'s digest',
      run: async (context) => {
        const expected = [...before.map(() => subject.manifest.digest), subject.manifest.digest, ...after.map(() => subject.manifest.digest), missingSubject.digest]
        expectEqual(subjectHeaders, expected, 'the OCI-Subject headers')
      }
    },
    {
      name: 'referrers of a subject: every referrer with its media type, size, artifact type and annotations',
      run: async (context) => {
        const { manifests } = await referrers(context, subject.manifest.digest)
        expectListed(manifests, referrerManifests)
        expectEqual(manifests.length, referrerManifests.length, 'the number of referrers')
      }
    },
    {
      name: 'referrers filtered by artifactType: OCI-Filters-Applied and only that type',
      run: async (context) => {
        for (const artifactType of [ArtifactTypes.a, ArtifactTypes.b]) {
          const { manifests, filtered } = await referrers(context, subject.manifest.digest, artifactType)
          const expected = referrerManifests.filter((item) => expectedDescriptor(item).artifactType === artifactType)
          expectTrue(filtered, 'expected OCI-Filters-Applied: artifactType')
          expectListed(manifests, expected)
          expectEqual(manifests.length, expected.length, `the number of ${artifactType} referrers`)
        }
      }
    },
    {
      name: 'referrers of a subject that was never pushed: the referrer pushed for it',
      run: async (context) => {
        const { manifests } = await referrers(context, missingSubject.digest)
        expectListed(manifests, [orphan.manifest])
        expectEqual(manifests.length, 1, 'the number of referrers')
      }
    },
    {
      name: 'teardown: delete what was pushed',
      run: async (context) => { await cleanUp(context, context.repo, allManifests, allBlobs) }
    }
  ]
}
