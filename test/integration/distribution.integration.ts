/**
 * CNCF distribution 2.8.2 (Debian's docker-registry) side by side with our registry:
 * storage compatibility both ways (each serves what the other wrote to a filesystem root,
 * byte for byte), and the differential corpus, whose every difference must be listed, with its
 * reason, in docs/differences.md.
 */

import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { projectRoot, run, sha256File, startDistribution, startServer, tempDir, type RunningRegistry } from './harness.js'
import { blobPath, buildImages, closure, readBlob, refDescriptor, type BuiltImages } from './oci-layout.js'
import { closingScenario, corpus, differences, makeFixture, pushFixture, runScenario, type Difference, type StepResult } from './differential.js'
import { runConformance } from '../../lib/conformance/index.js'
import { conformanceBlock } from './conformance-readme.js'

async function skopeo (...args: string[]): Promise<void> {
  await run('skopeo', args)
}

/** Pushes the built images with skopeo: OCI, Docker schema 2, and the index with --all. */
async function pushImages (registry: RunningRegistry, images: BuiltImages): Promise<void> {
  const ref = (path: string): string => `docker://${registry.host}/${path}`
  await skopeo('copy', '--dest-tls-verify=false', `oci:${images.layout}:${images.image}`, ref('compat/oci:v1'))
  await skopeo('copy', '--dest-tls-verify=false', `oci:${images.layout}:${images.image}`, ref('compat/oci:latest'))
  await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${images.layout}:${images.image}`, ref('compat/docker:v1'))
  await skopeo('copy', '--dest-tls-verify=false', '--all', `oci:${images.layout}:${images.multi}`, ref('compat/nested/multi:latest'))
}

interface Content {
  catalog: string[]
  tags: Record<string, string[]>
  /** `repo@reference` to the manifest's digest, media type and bytes' digest. */
  manifests: Record<string, string>
  /** `repo@digest` to the blob bytes' digest. */
  blobs: Record<string, string>
}

/** Everything a registry serves for the compat repositories, read through the API. */
async function contentOf (client: RegistryClient): Promise<Content> {
  const catalog = (await client.catalog()).repositories
  const content: Content = { catalog, tags: {}, manifests: {}, blobs: {} }
  for (const repo of catalog) {
    // Distribution 2.8.2 lists tags in directory order; the comparison is of the sets.
    const tags = (await client.allTags(repo)).sort()
    content.tags[repo] = tags
    const pending: string[] = [...tags]
    const seen = new Set<string>()
    while (pending.length > 0) {
      const reference = pending.pop() as string
      if (seen.has(reference)) continue
      seen.add(reference)
      const manifest = await client.getManifest(repo, reference)
      content.manifests[`${repo}@${reference}`] = `${manifest.digest} ${manifest.mediaType} ${await digestOfBytes(manifest.content)}`
      const body = JSON.parse(manifest.content.toString('utf8')) as { config?: { digest: string }, layers?: Array<{ digest: string }>, manifests?: Array<{ digest: string }> }
      for (const child of body.manifests ?? []) pending.push(child.digest)
      for (const blob of [...(body.config === undefined ? [] : [body.config]), ...(body.layers ?? [])]) {
        const bytes = await client.getBlob(repo, blob.digest)
        content.blobs[`${repo}@${blob.digest}`] = await digestOfBytes(bytes)
      }
    }
  }
  return content
}

async function digestOfBytes (bytes: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto')
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Pulls the OCI image and the index back with skopeo and compares every blob with the source. */
async function pullAndCompare (t: Test, registry: RunningRegistry, images: BuiltImages, work: string, label: string): Promise<void> {
  const out = join(work, `pulled-${label}`)
  await skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/compat/oci:v1`, `oci:${out}:v1`)
  await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${registry.host}/compat/nested/multi:latest`, `oci:${out}:multi`)
  for (const tag of ['v1', 'multi']) {
    const source = await refDescriptor(images.layout, tag === 'v1' ? images.image : images.multi)
    t.equal((await refDescriptor(out, tag)).digest, source.digest, `${tag}: the same manifest digest`)
    for (const digest of await closure(images.layout, source.digest)) {
      t.equal(await sha256File(blobPath(out, digest)), digest, `${tag}: ${digest} pulled intact`)
    }
  }
}

t.test('storage compatibility with distribution 2.8.2, both ways', async (t) => {
  const work = await tempDir(t)
  const images = await buildImages(work)

  await t.test('distribution writes, we serve the same root', async (t) => {
    const root = join(work, 'root-distribution')
    const distribution = await startDistribution(t, { root, delete: true })
    await pushImages(distribution, images)
    const ours = await startServer(t, ['--root', root, '--delete'])
    const theirs = await contentOf(new RegistryClient({ url: distribution.url }))
    t.same(theirs.catalog, ['compat/docker', 'compat/nested/multi', 'compat/oci'])
    t.same(await contentOf(new RegistryClient({ url: ours.url })), theirs, 'catalog, tags, manifests and blobs are identical')
    await pullAndCompare(t, ours, images, work, 'ours')

    const client = new RegistryClient({ url: ours.url })
    const manifest = await readBlob(images.layout, (await refDescriptor(images.layout, images.image)).digest)
    await client.putManifest('compat/oci', 'added-by-ours', manifest)
    await client.deleteManifest('compat/oci', 'latest')
    t.same((await new RegistryClient({ url: distribution.url }).allTags('compat/oci')).sort(), ['added-by-ours', 'v1'], 'distribution sees our tag changes in its root')
  })

  await t.test('we write, distribution serves the same root', async (t) => {
    const root = join(work, 'root-ours')
    const ours = await startServer(t, ['--root', root, '--delete'])
    await pushImages(ours, images)
    const distribution = await startDistribution(t, { root, delete: true })
    const mine = await contentOf(new RegistryClient({ url: ours.url }))
    t.same(mine.catalog, ['compat/docker', 'compat/nested/multi', 'compat/oci'])
    t.same(await contentOf(new RegistryClient({ url: distribution.url })), mine, 'catalog, tags, manifests and blobs are identical')
    await pullAndCompare(t, distribution, images, work, 'distribution')

    const client = new RegistryClient({ url: distribution.url })
    const digest = (await refDescriptor(images.layout, images.image)).digest
    await client.deleteManifest('compat/oci', digest)
    t.equal(await new RegistryClient({ url: ours.url }).headManifest('compat/oci', digest), undefined, 'we see distribution\'s delete in our root')
    t.same(await new RegistryClient({ url: ours.url }).allTags('compat/oci'), [], 'and the tags that went with it')
  })
})

t.test('an upload distribution started is continued and finished by us on the same root', async (t) => {
  const root = await tempDir(t)
  const distribution = await startDistribution(t, { root })
  const ours = await startServer(t, ['--root', root])
  const content = randomBytes(100_000)
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`
  const theirs = new RegistryClient({ url: distribution.url })
  const mine = new RegistryClient({ url: ours.url })
  const started = await theirs.send({ method: 'POST', url: '/v2/compat/upload/blobs/uploads/', headers: { 'content-length': 0 } })
  const patched = await theirs.send({ method: 'PATCH', url: theirs.resolve(started.headers.location as string), headers: { 'content-type': 'application/octet-stream' }, body: content.subarray(0, 40_000) })
  t.equal(patched.status, 202)
  // The same upload path on our server: its state is in the storage both share.
  const path = new URL(theirs.resolve(patched.headers.location as string)).pathname
  const status = await mine.send({ method: 'GET', url: path })
  t.equal(status.status, 204)
  t.equal(status.headers.range, '0-39999', 'we see the bytes distribution received')
  const rest = await mine.send({ method: 'PATCH', url: path, headers: { 'content-type': 'application/octet-stream', 'content-range': '40000-99999', 'content-length': 60_000 }, body: content.subarray(40_000) })
  t.equal(rest.status, 202)
  const done = await mine.send({ method: 'PUT', url: `${path}?digest=${encodeURIComponent(digest)}`, headers: { 'content-length': 0 } })
  t.equal(done.status, 201)
  t.ok((await theirs.getBlob('compat/upload', digest)).equals(content), 'distribution serves the blob we finished')
})

interface DocumentedDifference extends Difference {
  why: string
}

/** The table of docs/differences.md: rows of backticked check, field, ours, distribution, then a reason. */
export async function documentedDifferences (): Promise<DocumentedDifference[]> {
  const text = await readFile(join(projectRoot, 'docs', 'differences.md'), 'utf8')
  const rows: DocumentedDifference[] = []
  for (const line of text.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim())
    if (cells.length !== 5 || !cells[0]?.startsWith('`')) continue
    const code = (cell: string): string => cell.replace(/^`|`$/g, '').replace(/\\\|/g, '|')
    rows.push({ check: code(cells[0]), field: code(cells[1] as string), ours: code(cells[2] as string), theirs: code(cells[3] as string), why: cells[4] as string })
  }
  return rows
}

function key (difference: Difference): string {
  return `${difference.check} / ${difference.field}`
}

t.test('the differential corpus: every difference from distribution 2.8.2 is documented', async (t) => {
  const fixture = makeFixture()
  const pairs: Array<{ label: string, deletes: boolean, scenarios: typeof corpus }> = [
    { label: '', deletes: false, scenarios: [...corpus, closingScenario] },
    { label: ' (deletes enabled)', deletes: true, scenarios: corpus.filter((scenario) => scenario.name === 'deletes') }
  ]
  const results: StepResult[] = []
  for (const pair of pairs) {
    const ours = await startServer(t, ['--root', await tempDir(t), ...(pair.deletes ? ['--delete'] : [])])
    const distribution = await startDistribution(t, { root: await tempDir(t), delete: pair.deletes })
    const ourClient = new RegistryClient({ url: ours.url })
    const theirClient = new RegistryClient({ url: distribution.url })
    await pushFixture(ourClient, fixture)
    await pushFixture(theirClient, fixture)
    for (const scenario of pair.scenarios) {
      const mine = await runScenario(scenario, ourClient, fixture)
      const theirs = await runScenario(scenario, theirClient, fixture)
      t.same(mine.map((step) => step.check), theirs.map((step) => step.check), `${scenario.name}: the same steps ran`)
      mine.forEach((step, i) => {
        results.push({ check: `${step.check}${pair.label}`, ours: step.observation, theirs: theirs[i]?.observation ?? {} })
      })
    }
    await ours.stop()
    await distribution.stop()
  }
  t.ok(results.length > 100, `${results.length} requests compared`)
  const readme = await readFile(join(projectRoot, 'README.md'), 'utf8')
  t.equal(Number(/differential corpus of (\d+) requests/.exec(readme)?.[1]), results.length, 'the README says how many requests the corpus sends')

  const found = differences(results)
  const documented = await documentedDifferences()
  const documentedKeys = new Map(documented.map((row) => [key(row), row]))
  const undocumented = found.filter((difference) => {
    const row = documentedKeys.get(key(difference))
    return row === undefined || row.ours !== difference.ours || row.theirs !== difference.theirs
  })
  const foundKeys = new Set(found.map(key))
  const stale = documented.filter((row) => !foundKeys.has(key(row)))
  const table = (list: Difference[]): string => list.map((d) => `| \`${d.check}\` | \`${d.field}\` | \`${d.ours.replace(/\|/g, '\\|')}\` | \`${d.theirs.replace(/\|/g, '\\|')}\` | |`).join('\n')
  t.same(undocumented, [], `every difference is in docs/differences.md with the values observed; missing or changed rows:\n${table(undocumented)}`)
  t.same(stale, [], 'every row of docs/differences.md is a difference still observed')
  t.same(documented.filter((row) => row.why === ''), [], 'every documented difference says why')
})

t.test('the conformance suite against distribution 2.8.2: the results the README shows', async (t) => {
  const distribution = await startDistribution(t, { root: await tempDir(t), delete: true })
  const report = await runConformance({ url: distribution.url })
  const readme = await readFile(join(projectRoot, 'README.md'), 'utf8')
  const block = /<!-- conformance-distribution:start -->\n([\s\S]*?)\n<!-- conformance-distribution:end -->/.exec(readme)?.[1]
  t.equal(block, conformanceBlock(report), 'README.md has the results of this run between the conformance-distribution markers')
  t.ok(report.summary.passed > report.summary.total / 2, 'most checks pass: the suite is not failing for reasons of its own')
})
