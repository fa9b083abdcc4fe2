// Test helper: prints a SMART Backend Services client assertion (private_key_jwt) for the smoke
// test of the peers. The product signs its own assertions (src/smart/); this is only for the harness.
//
//   node scripts/peers/client-assertion.mjs PRIVATE_KEY_PEM KID TOKEN_ENDPOINT [CLIENT_ID] [ALG]
//
// CLIENT_ID defaults to scribe-backend, ALG to RS384 (ES384 for an EC P-384 key). The JWT has
// iss = sub = CLIENT_ID, aud = TOKEN_ENDPOINT, a fresh jti and a 5-minute exp.
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { load } from './deps.mjs';

const [keyPath, kid, aud, clientId = 'scribe-backend', alg = 'RS384'] = process.argv.slice(2);
if (!keyPath || !kid || !aud) {
  console.error('usage: client-assertion.mjs PRIVATE_KEY_PEM KID TOKEN_ENDPOINT [CLIENT_ID] [ALG]');
  process.exit(2);
}
const { SignJWT, importPKCS8 } = await load('jose');
const key = await importPKCS8(fs.readFileSync(keyPath, 'utf8'), alg);
const jwt = await new SignJWT({})
  .setProtectedHeader({ alg, kid, typ: 'JWT' })
  .setIssuer(clientId)
  .setSubject(clientId)
  .setAudience(aud)
  .setJti(randomUUID())
  .setIssuedAt()
  .setExpirationTime('5m')
  .sign(key);
process.stdout.write(jwt + '\n');
