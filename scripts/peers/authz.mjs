// fhirscribe's test SMART authorization server, on panva/oidc-provider, loopback only.
//
//   node scripts/peers/authz.mjs
//
// Environment:
//   PORT               port on 127.0.0.1 (0 or unset: a free one); the issuer is http://127.0.0.1:PORT
//   FHIR_AUD           the FHIR server's base URL: audience of every access token (required)
//   CLIENT_JWKS        path to the public JWKS of the Backend Services client `scribe-backend`, or
//   CLIENT_PUBLIC_PEM  path to its public key as PEM (SPKI), converted to a JWK with kid CLIENT_KID
//                      (default scribe-key-1); an RSA key signs RS384, an EC P-384 key ES384
//   APP_REDIRECT_URI   redirect URI of the public EHR-launch app `scribe-app` (default
//                      http://127.0.0.1:7000/callback)
//   TOKEN_TTL          access token lifetime in seconds (default 300; tests set 1-2 to see expiry)
//   TOKEN_BACKDATE     seconds to move the access token's iat/exp (and nbf) into the past (default 0):
//                      for resource servers that allow clock leeway past exp (HFS 0.2.7: 60 s), so a
//                      test sees a token refused TOKEN_TTL seconds after it was issued
//
// Clients:
//   scribe-backend  SMART Backend Services: client_credentials, private_key_jwt (RS384 or ES384);
//                   test-only: a `launch=PATIENT:ENCOUNTER` form field puts patient/encounter claims in
//                   its token (patient-context tokens without the login pages)
//   scribe-app      public SMART app: authorization_code + PKCE S256; the `launch` parameter, written
//                   `PATIENT_ID:ENCOUNTER_ID`, becomes `patient`/`encounter` claims of the access
//                   token and fields of the token response. Login/consent are oidc-provider's dev
//                   pages (any login name, any password).
// Access tokens are JWTs signed RS256 with a key made at start-up (published at /jwks), aud =
// FHIR_AUD, scopes = the SMART v2 scopes asked for (system|user|patient / resource . cruds|rs|c|r|s|cu|
// read|write). Discovery: /.well-known/smart-configuration and /.well-known/openid-configuration.
// Prints exactly one line on stdout once listening: `authz listening http://127.0.0.1:PORT`.
import fs from 'node:fs';
import http from 'node:http';
import { load } from './deps.mjs';

const { default: Provider } = await load('oidc-provider');
const jose = await load('jose');

function fail(msg) {
  console.error(`authz: ${msg}`);
  process.exit(2);
}

const FHIR_AUD = process.env.FHIR_AUD || fail('FHIR_AUD (the FHIR base URL) is required');
const TOKEN_TTL = Number(process.env.TOKEN_TTL || 300);
if (!Number.isInteger(TOKEN_TTL) || TOKEN_TTL < 1) fail('TOKEN_TTL must be a whole number of seconds >= 1');
const TOKEN_BACKDATE = Number(process.env.TOKEN_BACKDATE || 0);
if (!Number.isInteger(TOKEN_BACKDATE) || TOKEN_BACKDATE < 0) fail('TOKEN_BACKDATE must be a whole number of seconds >= 0');
const APP_REDIRECT_URI = process.env.APP_REDIRECT_URI || 'http://127.0.0.1:7000/callback';
const EXTRA_AUDS = (process.env.EXTRA_AUDS || '').split(' ').filter(Boolean);

async function clientJwks() {
  if (process.env.CLIENT_JWKS) return JSON.parse(fs.readFileSync(process.env.CLIENT_JWKS, 'utf8'));
  if (process.env.CLIENT_PUBLIC_PEM) {
    const pem = fs.readFileSync(process.env.CLIENT_PUBLIC_PEM, 'utf8');
    const ec = /BEGIN PUBLIC KEY/.test(pem) && (await isEc(pem));
    const alg = ec ? 'ES384' : 'RS384';
    const key = await jose.importSPKI(pem, alg, { extractable: true });
    return { keys: [{ ...(await jose.exportJWK(key)), kid: process.env.CLIENT_KID || 'scribe-key-1', use: 'sig', alg }] };
  }
  return fail('CLIENT_JWKS or CLIENT_PUBLIC_PEM (the scribe-backend public key) is required');
}
async function isEc(pem) {
  const { createPublicKey } = await import('node:crypto');
  return createPublicKey(pem).asymmetricKeyType === 'ec';
}

// Listen first, so that PORT=0 can pick a free port and the issuer can name it.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve);
});
const ISSUER = `http://127.0.0.1:${server.address().port}`;

// Server signing key (RS256), fresh each start.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'authz-rs256-1', use: 'sig', alg: 'RS256' };

// `scribe`: fhirscribe's own job API (system/scribe.c, patient/scribe.rs, ...).
const RESOURCES = ['scribe', 'Patient', 'Encounter', 'DocumentReference', 'Condition', 'MedicationStatement', 'Provenance',
  'Composition', 'Bundle', 'Practitioner', 'Device', 'Observation', 'AllergyIntolerance', 'Procedure',
  'ServiceRequest', 'MedicationRequest', 'Binary', 'OperationOutcome', '*'];
const PERMISSIONS = ['cruds', 'rs', 'c', 'r', 's', 'cu', 'read', 'write'];
const SMART_SCOPES = [];
for (const ctx of ['system', 'user', 'patient']) {
  for (const r of RESOURCES) for (const p of PERMISSIONS) SMART_SCOPES.push(`${ctx}/${r}.${p}`);
}
const SCOPES = ['openid', 'fhirUser', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', ...SMART_SCOPES];

// `launch` of the authorization request, by the jti of the code it produced.
const launchByCode = new Map();
// ... and by the grant it belongs to (refresh tokens keep the launch context).
const launchByGrant = new Map();
const parseLaunch = (l) => {
  const [patient, encounter] = String(l).split(':');
  return { ...(patient ? { patient } : {}), ...(encounter ? { encounter } : {}) };
};

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'scribe-backend',
      token_endpoint_auth_method: 'private_key_jwt',
      // no token_endpoint_auth_signing_alg: any of enabledJWA.clientAuthSigningAlgValues (RS384, ES384)
      jwks: await clientJwks(),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'scribe-app',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [APP_REDIRECT_URI],
    },
    {
      // The same app registered as a confidential asymmetric client (private_key_jwt, the
      // backend client's key), for deployments that give the review app a key.
      client_id: 'scribe-app-confidential',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: await clientJwks(),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [APP_REDIRECT_URI],
    },
  ],
  jwks: { keys: [signingJwk] },
  scopes: SCOPES,
  // The id_token carries fhirUser (SMART's "sso-openid-connect"), not only /me.
  claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
  conformIdTokenClaims: false,
  // The review app gets a refresh token with every code (rotated on use).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  extraParams: ['launch', 'aud'],
  pkce: { required: () => true },
  clientAuthMethods: ['private_key_jwt', 'none'],
  enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => FHIR_AUD,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: SMART_SCOPES.join(' '),
        // EXTRA_AUDS: other resource servers a client may name with `resource` (the scribe
        // service itself, in tests that call both it and the FHIR server).
        audience: EXTRA_AUDS.includes(resource) ? resource : FHIR_AUD,
        accessTokenTTL: TOKEN_TTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx) => {
    const code = ctx?.oidc?.entities?.AuthorizationCode;
    const refresh = ctx?.oidc?.entities?.RefreshToken;
    // A refreshed token keeps its grant's launch context (SMART). Test-only: a
    // client_credentials request may name a launch context (`launch=P:E`), so tests get
    // patient-context tokens without driving the login pages.
    const launch = code ? launchByCode.get(code.jti)
      : refresh ? launchByGrant.get(refresh.grantId)
        : (ctx?.oidc?.params?.launch ?? ctx?.oidc?.body?.launch);
    return launch ? parseLaunch(launch) : undefined;
  },
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        if (!TOKEN_BACKDATE) return;
        for (const c of ['iat', 'exp', 'nbf']) if (typeof jwt.payload[c] === 'number') jwt.payload[c] -= TOKEN_BACKDATE;
      },
    },
  },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, fhirUser: `Practitioner/${sub}` }) }),
  ttl: { ClientCredentials: TOKEN_TTL, AccessToken: TOKEN_TTL, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  if (ctx.path === '/.well-known/smart-configuration') {
    ctx.type = 'application/json';
    ctx.body = {
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/jwks`,
      authorization_endpoint: `${ISSUER}/auth`,
      token_endpoint: `${ISSUER}/token`,
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'none'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
      scopes_supported: SCOPES,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      capabilities: ['launch-ehr', 'client-public', 'client-confidential-asymmetric', 'context-ehr-patient',
        'context-ehr-encounter', 'permission-v2', 'sso-openid-connect'],
    };
    return;
  }
  await next();
  // Remember the EHR `launch` value for the code issued at /auth (or on resuming /auth/:uid).
  const code = ctx.oidc?.entities?.AuthorizationCode;
  if (ctx.path.startsWith('/auth') && code) {
    const launch = ctx.oidc.params?.launch ?? ctx.oidc.entities?.Interaction?.params?.launch;
    if (launch) { launchByCode.set(code.jti, launch); launchByGrant.set(code.grantId, launch); }
  }
  // SMART: the launch context also goes in the token response.
  if (ctx.path === '/token' && ctx.body?.access_token && code) {
    const launch = launchByCode.get(code.jti);
    if (launch) Object.assign(ctx.body, parseLaunch(launch));
  }
});

server.on('request', provider.callback());
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`authz listening ${ISSUER}`);
