// Loads the peers' npm packages from $FHIRSCRIBE_HOME/peers-npm (installed by scripts/peers/install.sh
// from this folder's package-lock.json), so the repository itself carries no node_modules.
// FHIRSCRIBE_PEERS_NPM overrides the folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export function fhirscribeHome() {
  if (process.env.FHIRSCRIBE_HOME) return process.env.FHIRSCRIBE_HOME;
  if (process.getuid && process.getuid() === 0) return '/var/cache/fhirscribe';
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'fhirscribe');
}

export const NPM_DIR = process.env.FHIRSCRIBE_PEERS_NPM || path.join(fhirscribeHome(), 'peers-npm');

/** Directory of an installed package, or exit 2 naming the installer. */
export function packageDir(name) {
  const dir = path.join(NPM_DIR, 'node_modules', name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    console.error(`peers: npm package ${name} is not installed in ${NPM_DIR}; run scripts/peers/install.sh`);
    process.exit(2);
  }
  return dir;
}

// The ESM entry point of a package: exports["."] (import/node/default conditions), else main.
function entry(pkg) {
  const pick = (e) => {
    if (typeof e === 'string') return e;
    if (!e || typeof e !== 'object') return undefined;
    if ('.' in e) return pick(e['.']);
    for (const k of ['import', 'node', 'default']) if (k in e) { const r = pick(e[k]); if (r) return r; }
    return undefined;
  };
  return (pkg.exports && pick(pkg.exports)) || pkg.main || 'index.js';
}

/** import() an installed package by name. */
export async function load(name) {
  const dir = packageDir(name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  return import(pathToFileURL(path.join(dir, entry(pkg))).href);
}
