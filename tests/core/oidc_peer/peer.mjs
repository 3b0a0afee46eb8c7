// An OpenID provider that is not the aioentra emulator: axa-group's oauth2-mock-server, over
// HTTPS on 127.0.0.1, with its issuer under a path prefix (msal's oidc_authority needs an issuer
// with at least one path segment, and the mock server's own issuer is a bare origin).
//
//   node peer.mjs --key KEY.pem --cert CERT.pem [--prefix /peer]
//
// Prints one JSON line when it listens: {"port", "issuer", "jwks_uri"}. Exits when its standard
// input closes (the test process went away) or on SIGTERM/SIGINT.
//
// Besides the issuer's endpoints it serves, outside the prefix:
//   GET    /_peer/requests  every request under the prefix, oldest first: method, path, and for
//                           token requests the form's field names and its non-secret values
//                           (grant_type, client_id, scope, client_assertion_type), the
//                           client assertion's header and claims (not its signature), and
//                           the claims of the token minted for it
//   DELETE /_peer/requests  forget them
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';

import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const { values } = parseArgs({
  options: {
    key: { type: 'string' },
    cert: { type: 'string' },
    prefix: { type: 'string', default: '/peer' },
  },
});
if (!values.key || !values.cert) {
  process.stderr.write('usage: node peer.mjs --key KEY.pem --cert CERT.pem [--prefix /peer]\n');
  process.exit(2);
}
const prefix = '/' + values.prefix.replace(/^\/+|\/+$/g, '');

const issuer = new OAuth2Issuer();
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer);
const requests = [];
const SHOWN = ['grant_type', 'client_id', 'scope', 'client_assertion_type'];

service.on('beforeTokenSigning', (token, req) => {
  // Claims of this peer's own making, so a test can tell its tokens from anyone else's.
  token.payload.azp = req.body?.client_id;
  token.payload.minted_by = 'oauth2-mock-server';
});
service.on('beforeResponse', (response, req) => {
  const entry = req.aioentraPeerEntry;
  if (entry === undefined) return;
  const body = req.body ?? {};
  entry.form_fields = Object.keys(body).sort();
  entry.form = Object.fromEntries(SHOWN.filter((k) => k in body).map((k) => [k, body[k]]));
  if (typeof body.client_assertion === 'string') {
    // The assertion's header and claims (never its signature): what the client signed for.
    const [header, claims] = body.client_assertion.split('.').slice(0, 2).map(decodeSegment);
    entry.assertion = { header, claims };
  }
  const accessToken = response.body?.access_token;
  if (typeof accessToken === 'string') {
    entry.minted = decodeSegment(accessToken.split('.')[1]);
  }
});

function decodeSegment(segment) {
  try {
    return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

function control(req, res) {
  if (req.method === 'DELETE') requests.length = 0;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(req.method === 'DELETE' ? [] : requests));
}

const server = createServer(
  { key: readFileSync(values.key), cert: readFileSync(values.cert) },
  (req, res) => {
    const url = req.url ?? '/';
    if (url === '/_peer/requests') return control(req, res);
    const entry = { method: req.method, path: url.split('?')[0], status: null };
    requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    if (url !== prefix && !url.startsWith(prefix + '/')) {
      res.writeHead(404).end();
      return undefined;
    }
    req.url = url.slice(prefix.length) || '/';
    req.aioentraPeerEntry = entry;
    return service.requestHandler(req, res);
  },
);

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer.url = `https://127.0.0.1:${port}${prefix}`;
  process.stdout.write(
    JSON.stringify({ port, issuer: issuer.url, jwks_uri: `${issuer.url}/jwks` }) + '\n',
  );
});

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
