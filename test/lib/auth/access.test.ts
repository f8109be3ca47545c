import t from 'tap'
import { Grant, parseScope, requiredAccess, scopeOf } from '../../../lib/auth/access.js'
import { Acl, globToRegExp } from '../../../lib/auth/acl.js'

/** The caller's name placeholder of ACL globs, spelled without a template literal look-alike. */
const USER = '$' + '{user}'

t.test('what each access level of the descriptors needs', async (t) => {
  t.same(requiredAccess('none', undefined), [])
  t.same(requiredAccess('pull', 'a/b'), [{ type: 'repository', name: 'a/b', action: 'pull' }])
  t.same(requiredAccess('push', 'a/b'), [{ type: 'repository', name: 'a/b', action: 'pull' }, { type: 'repository', name: 'a/b', action: 'push' }],
    'a write needs pull too, as distribution asks')
  t.same(requiredAccess('delete', 'a/b'), [{ type: 'repository', name: 'a/b', action: 'delete' }])
  t.same(requiredAccess('catalog', undefined), [{ type: 'registry', name: 'catalog', action: '*' }])
  t.equal(scopeOf([...requiredAccess('push', 'a/b'), { type: 'repository', name: 'c', action: 'pull' }]), 'repository:a/b:pull,push repository:c:pull')
})

t.test('scope grammar: names are checked before anything else sees them', async (t) => {
  t.same(parseScope('repository:foo/bar:pull,push'), { type: 'repository', name: 'foo/bar', actions: ['pull', 'push'] })
  t.same(parseScope('repository(plugin):foo:pull'), { type: 'repository', name: 'foo', actions: ['pull'] }, 'the resource class is dropped')
  t.same(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] })
  t.same(parseScope('repository:foo:pull,pull'), { type: 'repository', name: 'foo', actions: ['pull'] })
  for (const bad of [
    'repository:foo/../bar:pull', 'repository:../foo:pull', 'repository:foo%2Fbar:pull', 'repository:foo%252Fbar:pull',
    'repository:Foo:pull', 'repository:/foo:pull', 'repository:foo/:pull', 'repository:foo//bar:pull', 'repository::pull',
    'repository:foo', 'foo', 'repository:foo:PULL', 'Repository:foo:pull', 'registry:cat/alog:*', 'repository:foo:pull;rm'
  ]) {
    t.equal(parseScope(bad), undefined, bad)
  }
})

t.test('a grant matches names exactly', async (t) => {
  const grant = Grant.of([{ type: 'repository', name: 'foo', actions: ['pull'] }, { type: 'repository(plugin)', name: 'plug', actions: ['*'] }])
  t.ok(grant.allows('repository', 'foo', 'pull'))
  t.notOk(grant.allows('repository', 'foo', 'push'))
  t.notOk(grant.allows('repository', 'foobar', 'pull'), 'no prefix match')
  t.notOk(grant.allows('repository', 'foo/bar', 'pull'), 'no child match')
  t.notOk(grant.allows('repository', 'fo', 'pull'))
  t.notOk(grant.allows('registry', 'foo', 'pull'), 'the type must match')
  t.ok(grant.allows('repository', 'plug', 'delete'), '* grants any action; the class is ignored')
  t.notOk(Grant.of([{ type: 'repository', name: 'foo/*', actions: ['pull'] }]).allows('repository', 'foo/bar', 'pull'), 'a token name is never a glob')
  t.same(grant.missing(requiredAccess('push', 'foo')), [{ type: 'repository', name: 'foo', action: 'push' }])
  t.ok(Grant.all().allows('repository', 'anything', 'delete'))
  t.notOk(Grant.none().allows('repository', 'foo', 'pull'))
})

t.test('ACL globs', async (t) => {
  const match = (glob: string, name: string, user?: string): boolean => globToRegExp(glob, user)?.test(name) ?? false
  t.ok(match('foo/*', 'foo/bar'))
  t.notOk(match('foo/*', 'foobar'), 'foo/* does not match foobar')
  t.notOk(match('foo/*', 'foo/bar/baz'), '* stays within a component')
  t.notOk(match('foo/*', 'foo'))
  t.ok(match('foo/**', 'foo/bar/baz'))
  t.notOk(match('foo/**', 'foobar/baz'))
  t.notOk(match('foo/**', 'foo'))
  t.ok(match('**', 'a/b/c'))
  t.ok(match('*', 'abc'))
  t.notOk(match('*', 'a/b'))
  t.ok(match('lib-*', 'lib-x'))
  t.notOk(match('a.b', 'axb'), 'a dot is literal')
  t.ok(match(`home/${USER}/**`, 'home/alice/app', 'alice'))
  t.notOk(match(`home/${USER}/**`, 'home/bob/app', 'alice'))
  t.notOk(match(`home/${USER}/**`, 'home/a/app', 'a.*'), 'the user name is literal, not a pattern')
  t.notOk(match(`home/${USER}/**`, 'home/x/app'), `${USER} never matches an anonymous caller`)
})

t.test('ACL rules: users, groups, any authenticated user, anyone; the intersection is granted', async (t) => {
  const acl = Acl.from({
    groups: { dev: ['bob', 'carol'] },
    rules: [
      { user: 'alice', repository: '**', actions: ['*'] },
      { group: 'dev', repository: 'team/*', actions: ['pull', 'push'] },
      { user: '*', repository: 'library/*', actions: ['pull'] },
      { anonymous: true, repository: 'public/**', actions: ['pull'] },
      { user: 'alice', registry: 'catalog', actions: ['*'] },
      { user: '*', repository: `home/${USER}/**`, actions: ['pull', 'push', 'delete'] }
    ]
  })
  const ask = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }]
  t.same(acl.grant('bob', ask), [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }])
  t.same(acl.grant('dave', ask), [])
  t.same(acl.grant('alice', ask), ask)
  t.same(acl.grant(undefined, [{ type: 'repository', name: 'library/x', actions: ['pull'] }]), [], 'library needs a user')
  t.same(acl.grant('dave', [{ type: 'repository', name: 'library/x', actions: ['pull', 'push'] }]), [{ type: 'repository', name: 'library/x', actions: ['pull'] }])
  t.same(acl.grant(undefined, [{ type: 'repository', name: 'public/a/b', actions: ['pull', 'push'] }]), [{ type: 'repository', name: 'public/a/b', actions: ['pull'] }])
  t.same(acl.grant('bob', [{ type: 'repository', name: 'public/a', actions: ['pull'] }]), [{ type: 'repository', name: 'public/a', actions: ['pull'] }], 'anyone includes users')
  t.same(acl.grant('bob', [{ type: 'registry', name: 'catalog', actions: ['*'] }]), [])
  t.same(acl.grant('alice', [{ type: 'registry', name: 'catalog', actions: ['*'] }]), [{ type: 'registry', name: 'catalog', actions: ['*'] }])
  t.same(acl.grant('bob', [{ type: 'repository', name: 'home/bob/x', actions: ['push'] }, { type: 'repository', name: 'home/carol/x', actions: ['push'] }]),
    [{ type: 'repository', name: 'home/bob/x', actions: ['push'] }])
  t.same(acl.grant('bob', [{ type: 'repository', name: 'teamx', actions: ['pull'] }]), [])
})

t.test('ACL validation names the problem', async (t) => {
  t.throws(() => Acl.from({ rules: [{ repository: 'x', actions: ['pull'] }] }), /exactly one of user, group, anonymous/)
  t.throws(() => Acl.from({ rules: [{ user: 'a', group: 'g', repository: 'x', actions: ['pull'] }] }), /exactly one of user, group, anonymous/)
  t.throws(() => Acl.from({ rules: [{ user: 'a', actions: ['pull'] }] }), /exactly one of repository, registry/)
  t.throws(() => Acl.from({ rules: [{ group: 'nope', repository: 'x', actions: ['pull'] }] }), /unknown group nope/)
  t.throws(() => Acl.from({ rules: [{ user: 'a', repository: 'X[', actions: ['pull'] }] }), /bad repository glob/)
  t.throws(() => Acl.from({ rules: [{ user: 'a', repository: 'x', actions: ['write'] }] }), /invalid access-control list/)
  t.throws(() => Acl.from({ rules: [{ user: 'a', repository: 'x', actions: ['pull'], extra: 1 }] }), /invalid access-control list/)
  t.throws(() => Acl.from([]), /invalid access-control list/)
})
