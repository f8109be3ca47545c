/**
 * The benchmark's own parts that a wrong figure would hide: blob content at any offset, the
 * load generator's parsing and checks, and the /proc readings. No timing is asserted.
 */

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { BlobContent } from '../../bench/content.js'
import { CheckError, check } from '../../bench/http.js'
import { loadFixed } from '../../bench/loadgen.js'
import { cpuSeconds, processTree, rssBytes } from '../../bench/proc.js'

const MiB = 1024 * 1024

t.test('blob content: any range is the same bytes, the digest is of the whole, seeds differ', async (t) => {
  const content = new BlobContent(7, 3 * MiB + 5)
  const whole = content.bytes(0, content.size)
  t.equal(whole.length, content.size)
  t.equal(content.digest, `sha256:${createHash('sha256').update(whole).digest('hex')}`)
  for (const [start, end] of [[0, 1], [10, 20], [MiB - 3, MiB + 40], [MiB + 16, 2 * MiB + 17], [3 * MiB, 3 * MiB + 5]] as const) {
    const parts = [...content.slices(start, end)]
    t.ok(Buffer.concat(parts).equals(whole.subarray(start, end)), `bytes ${start}-${end}`)
  }
  t.notOk(new BlobContent(8, content.size).bytes(0, content.size).equals(whole), 'another seed, other bytes')
  t.notOk(whole.subarray(0, MiB).equals(whole.subarray(MiB, 2 * MiB)), 'blocks differ within a blob')
})

async function listen (server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('load generator: reads answers with and without a body and checks each one', async (t) => {
  let served = 0
  const server = createServer((request, response) => {
    served++
    const body = Buffer.from(`{"path":"${request.url ?? ''}"}`)
    if (request.url === '/chunked') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    response.writeHead(request.url === '/missing' ? 404 : 200, { 'content-length': body.length, 'x-digest': 'abc' })
    response.end(request.method === 'HEAD' ? undefined : body)
  })
  const origin = await listen(server)
  t.teardown(() => server.close())

  const bodies = new Set<string>()
  const get = await loadFixed(origin, {
    connections: 4,
    durationMs: 200,
    request: { method: 'GET', path: '/ok', headers: { accept: 'application/json' } },
    check: (response) => {
      check(response.status === 200, 'status')
      check(response.headers['x-digest'] === 'abc', 'header')
      bodies.add(response.body.toString())
    }
  })
  t.ok(get.requests > 0, 'requests were made')
  t.same([...bodies], ['{"path":"/ok"}'], 'every body read whole and exact')
  t.ok(get.p99Ms >= get.p50Ms, 'percentiles are ordered')
  t.ok(served >= get.requests, 'the server saw them')

  const head = await loadFixed(origin, {
    connections: 2,
    durationMs: 100,
    request: { method: 'HEAD', path: '/ok' },
    check: (response) => { check(response.body.length === 0, 'no body on HEAD') }
  })
  t.ok(head.requests > 0, 'HEAD answers announce a length but carry no body')

  await t.rejects(loadFixed(origin, {
    connections: 2,
    durationMs: 100,
    request: { method: 'GET', path: '/missing' },
    check: (response) => { check(response.status === 200, `status ${response.status}`) }
  }), CheckError, 'a failed check fails the load')
  await t.rejects(loadFixed(origin, {
    connections: 1,
    durationMs: 100,
    request: { method: 'GET', path: '/chunked' },
    check: () => {}
  }), /without Content-Length/, 'an answer it cannot delimit fails the load')
})

t.test('/proc readings: a process tree, its CPU time and resident size', async (t) => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
  t.teardown(() => { child.kill() })
  await new Promise((resolve) => child.once('spawn', resolve))
  const tree = processTree(process.pid)
  t.equal(tree[0], process.pid, 'starts with the root')
  t.ok(tree.includes(child.pid as number), 'includes a child')
  t.ok(cpuSeconds([process.pid]) > 0, 'this process has used CPU')
  t.ok(rssBytes([process.pid]) > MiB, 'the resident size is read')
  t.equal(cpuSeconds([2 ** 30]), 0, 'a missing process counts nothing')
})
