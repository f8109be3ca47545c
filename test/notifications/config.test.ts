/**
 * The example server's notification settings: the config file's `notifications` section is the
 * plugin's option as it is, and distribution's variables replace its endpoints (a YAML list)
 * and its `includereferences`.
 */

import t from 'tap'
import { parseConfig } from '../../examples/config.js'

const file = `notifications:
  events:
    includereferences: false
  endpoints:
    - name: from-file
      url: http://file.example/events
      secret: k
`
const withFile = (env: Record<string, string> = {}) => parseConfig(['--config', 'config.yml', '--storage', 'inmemory'], env, '/srv', () => file)

t.test('the section is the plugin option, and no longer "not yet acted on"', async (t) => {
  const config = withFile()
  t.same(config.registry.notifications, { events: { includereferences: false }, endpoints: [{ name: 'from-file', url: 'http://file.example/events', secret: 'k' }] })
  t.equal(config.notices, undefined)
})

t.test('REGISTRY_NOTIFICATIONS_ENDPOINTS replaces the list; the events flag has its variable', async (t) => {
  const env = {
    REGISTRY_NOTIFICATIONS_ENDPOINTS: '[{name: env, url: "http://env.example/events", timeout: 2s, format: cloudevents}]',
    REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES: 'true'
  }
  t.same(withFile(env).registry.notifications, { events: { includereferences: true }, endpoints: [{ name: 'env', url: 'http://env.example/events', timeout: '2s', format: 'cloudevents' }] })
  const alone = parseConfig(['--storage', 'inmemory'], { REGISTRY_NOTIFICATIONS_ENDPOINTS: '- name: ci\n  url: http://ci.example/\n' })
  t.same(alone.registry.notifications, { endpoints: [{ name: 'ci', url: 'http://ci.example/' }] })
  t.equal(parseConfig(['--storage', 'inmemory'], {}).registry.notifications, undefined, 'none without either')
})

t.test('a bad value names its variable or key', async (t) => {
  t.throws(() => parseConfig(['--storage', 'inmemory'], { REGISTRY_NOTIFICATIONS_ENDPOINTS: '[{name: x, url: ftp://x}]' }), /^REGISTRY_NOTIFICATIONS_ENDPOINTS\.0\.url: /)
  t.throws(() => parseConfig(['--storage', 'inmemory'], { REGISTRY_NOTIFICATIONS_ENDPOINTS: '[{' }), /^REGISTRY_NOTIFICATIONS_ENDPOINTS: not valid YAML/)
  t.throws(() => parseConfig(['--config', 'c.yml'], {}, '/srv', () => 'notifications:\n  endpoints:\n    - name: x\n      url: http://x/\n      ignore:\n        actions: [push, fetch]\n'), /notifications\.endpoints\.0\.ignore\.actions\.1/)
})
