// Route matching: host (ports ignored, wildcards), path exact/prefix/regex, method, headers, query.
import { expect } from 'chai';
import { compileRouteMatch, type RouteInput } from '../../src/config/matchers.ts';

function input(over: Partial<RouteInput> & { url?: string } = {}): RouteInput {
  const url = over.url ?? '/';
  return {
    host: 'payments',
    method: 'GET',
    headers: {},
    pathname: url.split('?')[0]!,
    query: new URLSearchParams(url.split('?')[1] ?? ''),
    ...over,
  };
}

describe('route matching', () => {
  it('matches everything when the match is empty', () => {
    expect(compileRouteMatch({})(input())).to.equal(true);
  });

  it('matches the host case-insensitively, ignoring ports, with leading wildcards', () => {
    expect(compileRouteMatch({ host: 'Payments:8080' })(input())).to.equal(true);
    expect(compileRouteMatch({ host: 'payments' })(input({ host: 'paymentsx' }))).to.equal(false);
    const wildcard = compileRouteMatch({ host: '*.shop.local' });
    expect(wildcard(input({ host: 'payments.shop.local' }))).to.equal(true);
    expect(wildcard(input({ host: 'shop.local' }))).to.equal(false);
  });

  it('matches paths exactly, by prefix, or by a whole-path regex', () => {
    expect(compileRouteMatch({ path: '/charge' })(input({ url: '/charge?x=1' }))).to.equal(true);
    expect(compileRouteMatch({ path: '/charge' })(input({ url: '/charge/1' }))).to.equal(false);
    expect(compileRouteMatch({ pathPrefix: '/api/' })(input({ url: '/api/v1' }))).to.equal(true);
    expect(compileRouteMatch({ pathPrefix: '/api/' })(input({ url: '/ap' }))).to.equal(false);
    const regex = compileRouteMatch({ pathRegex: '/orders/[0-9]+' });
    expect(regex(input({ url: '/orders/42' }))).to.equal(true);
    expect(regex(input({ url: '/orders/42/items' }))).to.equal(false);
  });

  it('matches one method or a list', () => {
    expect(compileRouteMatch({ method: 'POST' })(input())).to.equal(false);
    expect(compileRouteMatch({ method: ['GET', 'HEAD'] })(input({ method: 'HEAD' }))).to.equal(true);
  });

  it('matches headers: exact, prefix, regex, present, inverted; names case-insensitive', () => {
    const headers = { 'x-canary': '1', 'x-user': 'jason', 'x-multi': ['a', 'b'] };
    const match = (rule: object) => compileRouteMatch({ headers: { 'X-Canary': rule } as never })(input({ headers }));
    expect(match({ exact: '1' })).to.equal(true);
    expect(match({ exact: '2' })).to.equal(false);
    expect(match({ prefix: '1' })).to.equal(true);
    expect(match({ regex: '[0-9]' })).to.equal(true);
    expect(match({ present: true })).to.equal(true);
    expect(match({ exact: '1', invert: true })).to.equal(false);
    expect(compileRouteMatch({ headers: { 'x-missing': { present: false } } })(input({ headers }))).to.equal(true);
    expect(compileRouteMatch({ headers: { 'x-multi': { exact: 'a,b' } } })(input({ headers }))).to.equal(true);
  });

  it('matches query parameters', () => {
    const match = compileRouteMatch({ query: { version: { exact: '2' }, debug: { present: true } } });
    expect(match(input({ url: '/?version=2&debug' }))).to.equal(true);
    expect(match(input({ url: '/?version=2' }))).to.equal(false);
  });

  it('needs every condition to hold', () => {
    const match = compileRouteMatch({ host: 'payments', pathPrefix: '/', headers: { 'x-canary': { exact: '1' } } });
    expect(match(input({ headers: { 'x-canary': '1' } }))).to.equal(true);
    expect(match(input())).to.equal(false);
  });
});
