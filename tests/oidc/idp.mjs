// A real OpenID provider (panva's oidc-provider) for the gateway's single sign-on tests.
//
// Started by tests/oidc_idp.py with one argument, a JSON file: {host, port, keys: {k1, k2},
// clients, users, client_groups, resources}. k1 signs everything, as configured; the extra
// routes below let a test make the provider misbehave the way real ones can:
//   GET /__test/next?mode=tampered|wrong-aud|expired|unknown-key  the next token response
//       carries a bad ID token (changed after signing, for another client, expired, or signed
//       by a key the provider does not publish), re-signed with the provider's own key k1
//   GET /__test/rotate   publish k2 in the JWKS and sign every later token with it
//   GET /__test/stats    {jwks_fetches}: how often the gateway fetched the keys
// Users log in with the built-in development login form (any password).
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK } from 'jose';

const opts = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://${opts.host}:${opts.port}`;
// k2 is published without "alg", as some providers do: the key type alone must do.
const publicJwk = ({ d, p, q, dp, dq, qi, alg, ...pub }) => pub;
const signingKeys = {
  k1: await importJWK(opts.keys.k1, 'RS256'),
  k2: await importJWK(opts.keys.k2, 'RS256'),
  k3: await importJWK(opts.keys.k3, 'RS256'),
};
const test = { next: null, rotated: false, jwksFetches: 0 };

function claimsOf(accountId, use) {
  const user = opts.users[accountId];
  const claims = { sub: accountId, ...user.claims };
  // Some providers put a claim only in userinfo, never in the ID token.
  if (use === 'userinfo' && user.userinfo_only) Object.assign(claims, user.userinfo_only);
  return claims;
}

const provider = new Provider(issuer, {
  clients: opts.clients,
  jwks: { keys: [opts.keys.k1] },
  cookies: { keys: ['gateway-test-idp-cookie-key'] },
  findAccount: (ctx, id) => (opts.users[id]
    ? { accountId: id, claims: (use) => claimsOf(id, use) } : undefined),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups', 'team_roles'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false, // the groups claim goes into the ID token, as with most IdPs
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (!opts.resources.includes(resource)) throw new errors.InvalidTarget();
        return { scope: 'admin', audience: resource, accessTokenFormat: 'jwt',
                 accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  // First-party clients: no consent screen, every requested OIDC scope is granted.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind === 'ClientCredentials') return { groups: opts.client_groups[token.clientId] ?? [] };
    return token.accountId ? { groups: opts.users[token.accountId]?.claims.groups ?? [] } : undefined;
  },
  ttl: {
    AccessToken: 600,
    ClientCredentials: (ctx, token, client) => (client.clientId === 'bot-short' ? 1 : 600),
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  renderError: (ctx, out) => { ctx.type = 'html'; ctx.body = `<h1 id="idp-error">${out.error}</h1><p>${out.error_description ?? ''}</p>`; },
});

async function resign(token, change, kid = test.rotated ? 'k2' : 'k1') {
  const header = decodeProtectedHeader(token);
  const payload = { ...decodeJwt(token), ...change };
  return new SignJWT(payload).setProtectedHeader({ ...header, kid }).sign(signingKeys[kid]);
}

async function misbehave(token, mode) {
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'tampered': { // changed after signing: the signature no longer matches
      const [h, , s] = token.split('.');
      const payload = { ...decodeJwt(token), groups: ['gw-admins'] };
      return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    }
    case 'wrong-aud': return resign(token, { aud: 'another-app', azp: 'another-app' });
    case 'expired': return resign(token, { iat: now - 1200, exp: now - 600 });
    case 'unknown-key': return resign(token, {}, 'k3');
    default: throw new Error(`unknown mode ${mode}`);
  }
}

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) {
    if (ctx.path === '/__test/next') test.next = ctx.query.mode;
    if (ctx.path === '/__test/rotate') test.rotated = true;
    ctx.body = { jwks_fetches: test.jwksFetches, rotated: test.rotated, next: test.next };
    return;
  }
  await next();
  if (ctx.path === '/jwks') {
    test.jwksFetches += 1;
    if (test.rotated) ctx.body = { keys: [...ctx.body.keys, publicJwk(opts.keys.k2)] };
  }
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body) {
    const body = { ...ctx.body };
    const mode = test.next;
    test.next = null;
    if (body.id_token && mode) body.id_token = await misbehave(body.id_token, mode);
    else if (body.id_token && test.rotated) body.id_token = await resign(body.id_token, {});
    if (test.rotated && body.access_token?.split('.').length === 3) {
      body.access_token = await resign(body.access_token, {});
    }
    ctx.body = body;
  }
});

provider.listen(opts.port, opts.host, () => console.log(`idp listening on ${issuer}`));
