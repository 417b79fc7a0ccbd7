// A real OpenID Provider for Keyward's SSO tests: panva's certified oidc-provider, with
// its development sign-in pages, which take any login name and any password.
//
// The login name decides who signs in: it is the subject (`sub`) and the email, except
// that `+unverified` in it (alice+unverified@example.com) gives the email without that
// tag and `email_verified: false`; `+second` in it is another identity (another `sub`) with
// the address without that tag, verified, as at a provider that lets two of its accounts
// claim one address. A test controls the claims by the name it types.
//
// Each test registers a client of its own (dynamic registration, `POST /reg`) with its
// server's redirect URI, so one provider serves a whole test binary. It listens on a free
// loopback port, prints `listening http://127.0.0.1:PORT` once it answers, and exits when
// its standard input closes (the test binary ended).

import http from 'node:http';
import Provider from 'oidc-provider';

function claimsOf(login) {
  return {
    sub: login,
    email: login.replace('+unverified', '').replace('+second', ''),
    email_verified: !login.includes('+unverified'),
    // 70 000 characters, for an ID token over Keyward's 64 KiB limit: asked for with the
    // `claims` parameter, {"id_token":{"padding":null}}.
    padding: 'x'.repeat(70000),
  };
}

// PORT (default: a free one) and CLIENT (one client, as JSON) let a story start a
// provider of its own on a port Keyward was already told about, with a client it knows.
const clients = process.env.CLIENT ? [JSON.parse(process.env.CLIENT)] : [];

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    claims: { openid: ['sub'], email: ['email', 'email_verified'], padding: null },
    findAccount(ctx, sub) {
      return { accountId: sub, claims: async () => claimsOf(sub) };
    },
    // A first-party client: no consent page, as a company's provider is usually set up.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email');
      grant.addOIDCClaims(['padding']);
      await grant.save();
      return grant;
    },
    // A client registered with the name `short-lived` gets ID tokens that expire in 3 s:
    // the deprovisioning story watches a Keyward session end with its ID token.
    ttl: {
      IdToken: (ctx, token, client) => (client.clientName === 'short-lived' ? 3 : 3600),
      AccessToken: 3600,
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
      AuthorizationCode: 60,
    },
    clients,
    pkce: { required: () => true },
    cookies: { keys: ['keyward-test-provider-cookie-key'] },
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      claimsParameter: { enabled: true },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('provider error:', err));
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
