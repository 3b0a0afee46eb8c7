// One client-credentials token from @azure/msal-node, for tests/emulator/test_node_clients.py.
//
// Input (JSON on argv[2]): {authority, clientId, clientSecret, scope}. Output (JSON on stdout):
// {token, tokenType, second} on success, where `second` says whether a second call was served
// from msal's cache; {errorCode, errorMessage} on an error.
// The emulator's CA comes from NODE_EXTRA_CA_CERTS, which Node reads once at startup.
import { ConfidentialClientApplication } from "@azure/msal-node";

const input = JSON.parse(process.argv[2]);
const app = new ConfidentialClientApplication({
  auth: {
    clientId: input.clientId,
    clientSecret: input.clientSecret,
    authority: input.authority,
    // The emulator's host is no Microsoft cloud: name it as known, so msal trusts the authority
    // without asking login.microsoftonline.com's instance discovery about it.
    knownAuthorities: [new URL(input.authority).host],
  },
});

try {
  const first = await app.acquireTokenByClientCredential({ scopes: [input.scope] });
  const second = await app.acquireTokenByClientCredential({ scopes: [input.scope] });
  console.log(
    JSON.stringify({
      token: first.accessToken,
      tokenType: first.tokenType,
      second: second.fromCache ? "cache" : "network",
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ errorCode: error.errorCode, errorMessage: error.errorMessage }));
}
