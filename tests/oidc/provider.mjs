// A real OpenID Connect provider (panva/oidc-provider) for jwtgate's
// black-box tests (tests/oidc_*_test.go). Usage: node provider.mjs PORT.
// It prints "listening" once it serves.
//
// - client "jwtgate-test" (secret "test-secret", code flow, redirect
//   http://127.0.0.1:1/cb): the Go tests log users in by posting the
//   devInteractions login and consent forms;
// - accounts with Keycloak-shaped claims (realm_access.roles,
//   resource_access, preferred_username), also put in JWT access tokens;
// - resource indicator urn:my-api: JWT access tokens with aud urn:my-api;
//   without a resource, access tokens are opaque (introspection, userinfo);
// - POST /_test/rotate: a new signing key (the old one stays published);
//   POST /_test/account/ID with a JSON body: replaces the account's claims;
// - client "jwtgate-browser" (secret "browser-secret", PKCE required) for the
//   gateway's own browser login (tests/oidc_browser_test.go): its
//   redirect_uris and post_logout_redirect_uris come from the environment
//   (OIDC_BROWSER_REDIRECTS, OIDC_BROWSER_POST_LOGOUT: comma-separated), its
//   access tokens are JWTs for urn:my-api without a resource parameter (as
//   Keycloak's audience mapper does), and it gets refresh tokens, rotated
//   on every use;
// - one storage shared by every provider instance (rotation builds a new
//   one), without the default in-memory adapter's 1 000-entry bound.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] || 0);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  alice: {
    email: 'alice@example.test', preferred_username: 'alice', given_name: 'Alice', family_name: 'Liddell',
    realm_access: { roles: ['staff'] },
    resource_access: { 'my-api': { roles: ['billing', 'reports'] } },
  },
  root: {
    email: 'root@example.test', preferred_username: 'root', given_name: 'Root', family_name: 'Admin',
    realm_access: { roles: ['staff', 'admin'] },
    resource_access: {},
  },
  bob: {
    email: 'bob@example.test', preferred_username: 'bob', given_name: 'Bob', family_name: 'Plain',
    realm_access: { roles: [] },
  },
};

const store = new Map(); // "Model:id" -> { payload, expiresAt }
class SharedAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
    if (payload.grantId) {
      const g = `grant:${payload.grantId}`;
      const ids = store.get(g)?.payload ?? [];
      ids.push(this.key(id));
      store.set(g, { payload: ids, expiresAt: 0 });
    }
    if (payload.userCode) store.set(`${this.name}:uc:${payload.userCode}`, { payload: id, expiresAt: 0 });
    if (payload.uid) store.set(`${this.name}:uid:${payload.uid}`, { payload: id, expiresAt: 0 });
  }
  get(key) {
    const e = store.get(key);
    if (!e) return undefined;
    if (e.expiresAt && e.expiresAt < Date.now()) { store.delete(key); return undefined; }
    return e.payload;
  }
  async find(id) { return this.get(this.key(id)); }
  async findByUserCode(code) { const id = this.get(`${this.name}:uc:${code}`); return id && this.find(id); }
  async findByUid(uid) { const id = this.get(`${this.name}:uid:${uid}`); return id && this.find(id); }
  async consume(id) { const p = await this.find(id); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const k of store.get(`grant:${grantId}`)?.payload ?? []) store.delete(k);
    store.delete(`grant:${grantId}`);
  }
}

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}
let keys = [newKey()];

const scopes = 'openid profile email roles offline_access';

const browserClient = 'jwtgate-browser';
const fromEnv = (name, dflt) => (process.env[name] || dflt).split(',').filter(Boolean);

function build() {
  const p = new Provider(issuer, {
    adapter: SharedAdapter,
    clients: [{
      client_id: 'jwtgate-test', client_secret: 'test-secret',
      redirect_uris: ['http://127.0.0.1:1/cb'],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }, {
      client_id: browserClient, client_secret: 'browser-secret',
      redirect_uris: fromEnv('OIDC_BROWSER_REDIRECTS', 'http://127.0.0.1:1/auth/oidc/callback'),
      post_logout_redirect_uris: fromEnv('OIDC_BROWSER_POST_LOGOUT', ''),
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }],
    jwks: { keys },
    scopes: scopes.split(' '),
    claims: {
      openid: ['sub'], email: ['email'],
      profile: ['preferred_username', 'given_name', 'family_name'],
      roles: ['realm_access', 'resource_access'],
    },
    async findAccount(_ctx, id) {
      if (!accounts[id]) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
    },
    async extraTokenClaims(_ctx, token) {
      const a = accounts[token.accountId];
      if (!a) return undefined;
      // Keycloak puts these in its access tokens.
      const { email, preferred_username, given_name, family_name, realm_access, resource_access } = a;
      return { email, preferred_username, given_name, family_name, realm_access, resource_access };
    },
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The default page imports a web font; this one stays on loopback.
        async logoutSource(ctx, form) {
          ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Logout Request</title></head><body>
            <h1>Sign out?</h1>${form}
            <button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
            </body></html>`;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client, oneOf) => oneOf ?? (client.clientId === browserClient ? 'urn:my-api' : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== 'urn:my-api') throw new errors.InvalidTarget();
          return { scope: scopes, audience: 'urn:my-api', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    pkce: { required: (_ctx, client) => client.clientId === browserClient },
    // The browser client's refresh tokens rotate on every use (a reused
    // one is refused and ends its grant); others keep the default (rotate
    // past 70% of the lifetime).
    rotateRefreshToken(ctx) {
      return ctx.oidc.client.clientId === browserClient || ctx.oidc.entities.RefreshToken.ttlPercentagePassed() >= 70;
    },
    async issueRefreshToken(_ctx, client, source) {
      return client.grantTypeAllowed('refresh_token') && (client.clientId === browserClient || source.scopes.has('offline_access'));
    },
    ttl: { AccessToken: 600, Session: 3600, Interaction: 600, Grant: 3600, IdToken: 600, AuthorizationCode: 60, RefreshToken: 3600 },
  });
  p.on('server_error', (_ctx, err) => console.error('server_error', err));
  return p;
}

let provider = build();

async function body(req) {
  let b = '';
  for await (const c of req) b += c;
  return b;
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/_test/rotate') {
      keys = [newKey(), keys[0]]; // new signing key first; the old one stays published
      provider = build();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: keys[0].kid }));
      return;
    }
    const m = req.method === 'POST' && req.url.match(/^\/_test\/account\/([a-z]+)$/);
    if (m) {
      accounts[m[1]] = JSON.parse(await body(req));
      res.writeHead(204);
      res.end();
      return;
    }
    provider.callback()(req, res);
  } catch (err) {
    console.error(err);
    res.writeHead(500);
    res.end();
  }
});
server.listen(port, '127.0.0.1', () => console.log('listening'));
